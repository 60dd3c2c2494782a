"""What every case needs: the commands compared, scripts run inside a host, and how a stop is timed.

Every Ray here runs on a tests.nshost host (its own network, PID and mount namespaces) with
RAY_USAGE_STATS_ENABLED=0 (nshost.base_env); requests go from inside the host; `ray stop` only ever runs
inside one.
"""

import json
import os
import re
import signal
import sys
import threading
import time

import psutil

from seedcore_boot.config.settings import resolve
from seedcore_boot.node.plan import make_plan

BINDIR = os.path.dirname(sys.executable)
RAY = os.path.join(BINDIR, "ray")
SERVE = os.path.join(BINDIR, "serve")
_console = os.path.join(BINDIR, "seedcore-boot")
BOOT = [_console] if os.path.exists(_console) else [sys.executable, "-m", "seedcore_boot"]
MARKER = "Ray runtime started."
UNBUFFERED = {"PYTHONUNBUFFERED": "1"}  # plain Ray's output through a pipe arrives when printed, as ours does
DEFAULTS = resolve({}).settings  # the ports every case uses


def plain_argv(role, block=True, address=None, **settings):
    """Plain `ray start` with the very ports (and flags) seedcore-boot would pass."""
    plan = make_plan(resolve(settings), role, address=address, ray=RAY, host_checks=False)
    return plan.argv if block else [a for a in plan.argv if a != "--block"], plan


# Inside a host: run each argv once, print [[seconds, exit code], ...].
TIME_CMDS = r"""
import json, subprocess, sys, time
out = []
for argv in json.loads(sys.argv[1]):
    t = time.monotonic()
    r = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out.append([time.monotonic() - t, r.returncode])
print(json.dumps(out))
"""


def time_cmds(host, argvs, timeout=120):
    out = host.python(TIME_CMDS, json.dumps(argvs), timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"timing {argvs}: {out.stderr[-500:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# Inside a host: say "polling", then poll a URL every 20 ms; print time.monotonic() of the first 200
# (the clock is the machine's, the same in every namespace).
POLL_200 = r"""
import sys, time, urllib.request
url, limit = sys.argv[1], float(sys.argv[2])
print("polling", flush=True)
end = time.monotonic() + limit
while time.monotonic() < end:
    try:
        with urllib.request.urlopen(url, timeout=1) as r:
            if r.status == 200:
                print(f"up {time.monotonic()}", flush=True)
                sys.exit(0)
    except Exception:
        pass
    time.sleep(0.02)
print("timeout", flush=True)
"""

# Inside a host: the head's endpoints as seedcore-boot checks them (health.node_probes), polled until all
# answer; prints time.monotonic() then.
POLL_READY = r"""
import sys, time
from seedcore_boot.ray import health
from seedcore_boot.config.settings import resolve
probes = health.node_probes(resolve({}).settings, "head")
print("polling", flush=True)
health.wait_all(probes, time.monotonic() + float(sys.argv[1]), lambda s: time.sleep(0.02))
print(f"up {time.monotonic()}", flush=True)
"""


def poller(host, script, *args):
    proc = host.spawn([sys.executable, "-c", script, *map(str, args)])
    proc.wait_line("polling", 60)
    return proc


def poll_result(proc, timeout):
    line = proc.wait_line(lambda l: l.startswith(("up ", "timeout")), timeout)
    if line.startswith("timeout"):
        raise RuntimeError("poller timed out")
    proc.wait(10)
    return float(line.split()[1])


def stamp(proc, match, timeout):
    """time.monotonic() at which the first line containing `match` arrived."""
    proc.wait_line(match, timeout)
    return next(t for t, l in zip(list(proc.stamps), list(proc.lines)) if match in l)


def preflight_ms(proc):
    """The "N ports free (X ms)" figure of seedcore-boot's preflight log line, in ms."""
    for line in proc.lines:
        m = re.search(r"\[preflight [^]]*\] (\d+) ports free \(([\d.]+) (ms|s)\)", line)
        if m:
            return float(m.group(2)) * (1000 if m.group(3) == "s" else 1), int(m.group(1))
    return None, None


class RssWatch:
    """Peak RSS of one process: sampled with psutil every 50 ms, and the kernel's own high-water mark
    (VmHWM), read while the process still runs. Only that pid, never its children."""

    def __init__(self, pid):
        self.proc = psutil.Process(pid)
        self.sampled = 0
        self.hwm = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                self.sampled = max(self.sampled, self.proc.memory_info().rss)
                with open(f"/proc/{self.proc.pid}/status") as fh:
                    for line in fh:
                        if line.startswith("VmHWM:"):
                            self.hwm = max(self.hwm, int(line.split()[1]) * 1024)
            except (psutil.Error, OSError):
                return
            self._stop.wait(0.05)

    def stop(self):
        """Peak RSS in MB (10^6 bytes)."""
        self._stop.set()
        self._t.join(timeout=2)
        return max(self.sampled, self.hwm) / 1e6


def timed_stop(host, proc, sig=signal.SIGTERM, limit=30.0, orphan_after=1.0, command=None):
    """Signal the process (or run `command` on the host, e.g. `ray stop`) and time until no process is
    left on the host. Returns (seconds to all gone or None after `limit`, seconds to the main process's
    exit, orphans = processes still alive `orphan_after` s after that exit)."""
    t0 = time.monotonic()
    if command is None:
        proc.signal(sig)
        main = proc
    else:
        main = host.spawn(command)
    exited = orphans = None
    while True:
        now = time.monotonic()
        if exited is None and main.popen.poll() is not None:
            exited = now
        left = host.processes()
        if exited is not None and orphans is None and now - exited >= orphan_after:
            orphans = len(left)
        if not left and exited is not None:
            return now - t0, exited - t0, orphans or 0
        if now - t0 > limit:
            return None, (exited - t0) if exited else None, len(left)
        time.sleep(0.02)


def cpu_seconds(pid):
    """User + system CPU seconds of one process (not its children)."""
    try:
        t = psutil.Process(pid).cpu_times()
        return t.user + t.system
    except psutil.Error:
        return None


def describe(procs):
    out = []
    for p in procs:
        try:
            out.append(" ".join(p.cmdline())[:100])
        except psutil.Error:
            pass
    return out
