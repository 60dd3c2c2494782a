"""The processes of one node, found by what ties them to it, and what to do when their supervisor is gone.

Every process of a node we start carries two variables in its environment: SEEDCORE_BOOT_NODE (the node's
name under our state dir, so <temp_dir>/seedcore-boot/<role>-<node_manager_port>) and
SEEDCORE_BOOT_SUPERVISOR (the supervisor's pid). Ray hands its environment down to every component and
worker, so the whole node is marked, and nothing else is: a plain `ray start`, another user's Ray, or a
process merely named "raylet" is never touched (`ray stop` kills by name; we never do).

A supervisor that dies (SIGKILL, OOM, a crash) leaves its node running unless something else stops it:
- the `ray start` child gets PR_SET_PDEATHSIG=SIGTERM (supervisor.py), so it stops its components in order;
- a watchdog (`python -m seedcore_boot.host.leftovers`, below), started beside the node in a session of its
  own, sees its pipe from the supervisor close, gives the node `grace` seconds to go, then SIGKILLs what
  is left of it.
"""

import os
import signal
import sys
import time

import psutil

from ..errors import BootError
from ..ray.components import component_name
from . import state

NODE = "SEEDCORE_BOOT_NODE"
SUPERVISOR = "SEEDCORE_BOOT_SUPERVISOR"


def node_name(settings, role):
    return os.path.join(settings.state_dir(), f"{role}-{settings.node_manager_port}")


def marks(proc):
    """(node name, supervisor pid) from a process's environment, or None (not ours, gone, not readable)."""
    try:
        env = proc.environ()
    except (psutil.Error, OSError):
        return None
    if NODE not in env:
        return None
    try:
        return env[NODE], int(env.get(SUPERVISOR, "0"))
    except ValueError:
        return env[NODE], 0


def supervisor_alive(pid, before):
    """Whether pid is a live seedcore-boot supervisor started before `before` (a recycled pid is not)."""
    try:
        return state.is_ours(pid) and psutil.Process(pid).create_time() <= before + 1
    except psutil.Error:
        return False


def orphaned(proc):
    """The node name when `proc` belongs to a node whose supervisor died, else None."""
    got = marks(proc)
    try:
        return got[0] if got and not supervisor_alive(got[1], proc.create_time()) else None
    except psutil.Error:
        return None


def find(prefix):
    """Live processes of nodes under `prefix` (a state dir, or one node's name) whose supervisor is gone.
    (The watchdog is not marked: the supervisor marks only the environment of its `ray start` child.)"""
    found = []
    for proc in psutil.process_iter():
        name = orphaned(proc) if proc.pid != os.getpid() else None
        if not name or not (name == prefix or name.startswith(prefix.rstrip("/") + "/")):
            continue
        try:
            if proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except psutil.Error:
            continue
    return found


def describe(procs):
    names = []
    for p in procs:
        try:
            names.append(component_name(p) or p.name())
        except psutil.Error:
            continue
    return ", ".join(sorted(set(names)))


def terminate(procs, grace):
    """SIGTERM, up to `grace` seconds to exit, then SIGKILL. Returns (terminated, killed) counts."""
    for p in procs:
        _send(p, signal.SIGTERM)
        _send(p, signal.SIGCONT)  # a stopped process (SIGSTOP, a debugger gone) acts on SIGTERM only once continued
    _, alive = psutil.wait_procs(procs, timeout=grace)
    for p in alive:
        _send(p, signal.SIGKILL)
    psutil.wait_procs(alive, timeout=5)
    return len(procs) - len(alive), len(alive)


def _send(proc, sig):
    try:
        proc.send_signal(sig)
    except psutil.Error:
        pass


def stop_budget(settings, role):
    """Seconds a node's stop may take before anything is wrong: the drain, then Ray's stop and its grace
    (30 s at least, as before workers drained)."""
    return max(30.0, (settings.drain_timeout if role == "worker" else 0) + settings.grace_period + 5)


def stop(settings, timeout, say):
    """`seedcore-boot stop`: SIGTERM each live supervisor under this temp dir and wait for it; then end the
    processes of any node under it whose supervisor died (grace_period, then SIGKILL). Returns 0.

    timeout None: as long as the node's own stop may take (a worker drains first, drain.py)."""
    nodes = state.running_nodes(settings)
    for _, record in nodes:
        pid = record["pid"]
        wait = stop_budget(settings, record["role"]) if timeout is None else timeout
        say(f"stopping the {record['role']} (pid {pid})")
        try:
            proc = psutil.Process(pid)
            proc.send_signal(signal.SIGTERM)
            proc.wait(wait)
        except psutil.NoSuchProcess:
            pass
        except psutil.AccessDenied:  # another user's node in a shared temp dir
            raise BootError(f"the {record['role']} (pid {pid}) under {settings.state_dir()} is not this user's: "
                            "not permitted to stop it", "run stop as the user who started it, or give this "
                            "user's own temp_dir") from None
        except psutil.TimeoutExpired:
            raise BootError(f"the {record['role']} (pid {pid}) did not exit within {wait:g} s",
                            f"kill it with `kill -9 {pid}`") from None
    orphans = find(settings.state_dir())
    if orphans:
        say(f"stopping {len(orphans)} process(es) of a node whose seedcore-boot supervisor died: "
            f"{describe(orphans)}")
        _, killed = terminate(orphans, settings.grace_period)
        if killed:
            say(f"{killed} of them needed SIGKILL after {settings.grace_period:g} s")
    say("stopped" if nodes or orphans else f"no running seedcore-boot node under {settings.state_dir()}")
    return 0


def orphan_of(pid):
    """The node name when `pid` belongs to a node whose supervisor died, else None (for busy-port hints)."""
    try:
        return orphaned(psutil.Process(pid))
    except psutil.Error:
        return None


def watchdog_argv(name, grace):
    return [sys.executable, "-m", "seedcore_boot.host.leftovers", name, str(grace)]


def _watch(name, grace):
    """Run by the watchdog: block until the supervisor's pipe closes, then end what is left of the node."""
    while os.read(0, 4096):
        pass  # the supervisor never writes: EOF means it exited, however it exited
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and find(name):
        time.sleep(0.2)  # `ray start` got SIGTERM by PR_SET_PDEATHSIG and is stopping its components
    left = find(name)
    if left:
        what = describe(left)
        terminate(left, 0.5)
        try:
            print(f"seedcore-boot watchdog: the supervisor of {name} is gone; killed what outlived it by "
                  f"{grace:g} s: {what}", file=sys.stderr, flush=True)
        except OSError:
            pass


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C is for the supervisor, not for us
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _watch(sys.argv[1], float(sys.argv[2]))
