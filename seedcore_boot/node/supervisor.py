"""One supervisor that owns the `ray start --block` child and every process below it.

We become a child subreaper, so Ray components orphaned by `ray start` are re-parented to us instead of
to init: the whole tree stays ours to stop, and ours to reap (also when we are PID 1 in a container).
"""

import collections
import ctypes
import os
import re
import signal
import subprocess
import threading
import time

import psutil

from ..errors import EXIT_NOT_EXECUTABLE, EXIT_NOT_FOUND, BootError
from ..host import leftovers
from ..ray import raycli
from ..ray.components import component_name

MARKER = "Ray runtime started."
_NODE_IP = re.compile(r"Local node IP: (\S+)")
_PR_SET_CHILD_SUBREAPER = 36
_PR_SET_PDEATHSIG = 1


def _alive(proc):
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False


def set_subreaper():
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False  # not Linux: orphans go to init, stop() still kills what it can see


def _die_with_parent():
    """In the child before exec: SIGTERM when the supervisor dies, however it dies (see leftovers.py)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    if os.getppid() == 1:  # the supervisor died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


class StopRequested(Exception):
    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class ChildExited(Exception):
    def __init__(self, returncode, what):
        super().__init__(what)
        self.returncode = returncode
        self.what = what


class Supervisor:
    def __init__(self, argv, env, log, grace, node_name=None):
        """node_name: the node's mark (leftovers.py); its processes carry it, and a watchdog ends them if
        this process dies without stopping them."""
        self.argv, self.log, self.grace, self.node_name = argv, log, grace, node_name
        self.env = dict(env, **{leftovers.NODE: node_name, leftovers.SUPERVISOR: str(os.getpid())}) \
            if node_name else env
        self.watchdog = None
        self.proc = None
        self.returncode = None
        self.stop_signal = None
        self.hurry = False
        self.marker = threading.Event()
        self.lines = collections.deque(maxlen=400)
        self.node_ip = None
        self.components = {}  # pid -> (psutil.Process, name), watched once the node is ready
        self.guards = []  # callables(dying=False) that raise BootError: conditions outside the tree (the head)
        self.head = None  # a worker's headwatch.HeadWatch, once the wait found its head
        self._reader = None

    # --- signals -------------------------------------------------------------------------------
    def install_signal_handlers(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum, frame):
        if self.stop_signal is not None:
            self.hurry = True  # a second signal: the user does not want to wait for the grace period
        self.stop_signal = signum

    # --- the child -----------------------------------------------------------------------------
    def start(self, gated=False):
        """Spawn the child. Gated (our raycli only): it imports Ray's CLI, then waits for release()."""
        set_subreaper()
        self._start_watchdog()
        env = dict(self.env, **{raycli.GATE: "1"}) if gated else self.env
        stdin = subprocess.PIPE if gated else subprocess.DEVNULL
        try:
            self.proc = subprocess.Popen(self.argv, env=env, stdin=stdin,
                                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                         start_new_session=True, preexec_fn=_die_with_parent)
        except FileNotFoundError:
            raise BootError(f"cannot run {self.argv[0]}: not found",
                            'install Ray: pip install "ray[default,serve]==2.20.0"', EXIT_NOT_FOUND) from None
        except OSError as exc:  # EACCES, and ENOEXEC (no #! and no binary: a shell would say 126 too)
            raise BootError(f"cannot run {self.argv[0]}: not executable ({exc.strerror})",
                            "check the file's permissions and that it is Ray's `ray` script",
                            EXIT_NOT_EXECUTABLE) from None
        self._reader = threading.Thread(target=self._read, name="ray-output", daemon=True)
        self._reader.start()
        return self.proc.pid

    def _start_watchdog(self):
        if self.node_name and self.watchdog is None:
            # Its own session: a signal to our process group (a terminal's Ctrl-C) does not reach it. Its
            # stdin is a pipe only we hold; our exit, however it happens, closes it.
            self.watchdog = subprocess.Popen(leftovers.watchdog_argv(self.node_name, self.grace),
                                             stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                             start_new_session=True)

    def close_watchdog(self):
        """After a stop: let the watchdog look once (it finds nothing) and go, so nothing of ours is left."""
        if self.watchdog is None:
            return
        try:
            self.watchdog.stdin.close()
            self.watchdog.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            self.watchdog.kill()
        self.reap()
        self.watchdog = None

    def release(self):
        """Let a gated child run Ray's CLI. Returns its pid."""
        try:
            self.proc.stdin.write(b"go\n")
            self.proc.stdin.close()
        except BrokenPipeError:
            pass  # it has exited; the next check() reports that
        return self.proc.pid

    def _read(self):
        for raw in iter(self.proc.stdout.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            self.lines.append(line)
            self.log.ray(line)
            if self.node_ip is None:
                m = _NODE_IP.search(line)
                if m:
                    self.node_ip = m.group(1)
            if MARKER in line:
                self.marker.set()

    def reap(self):
        """Collect every exited child: ours and the orphans re-parented to us."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if self.proc is not None and pid == self.proc.pid:
                self.returncode = os.waitstatus_to_exitcode(status)
                self.proc.returncode = self.returncode

    def check(self):
        """Raise StopRequested or ChildExited when either has happened; called by every wait."""
        self.reap()
        if self.stop_signal is not None:
            raise StopRequested(self.stop_signal)
        try:
            if self.returncode is not None:
                self._drain_output()
                raise ChildExited(self.returncode, f"`ray start` exited with code {self.returncode}")
            dead = [f"{name} (pid {pid})" for pid, (proc, name) in list(self.components.items())
                    if not _alive(proc)]
            if dead:  # all of them: one death brings others down (the agents fate-share), and order is unknown
                raise ChildExited(None, f"Ray component{'s' if len(dead) > 1 else ''} {', '.join(dead)} exited")
        except ChildExited:
            for guard in self.guards:
                guard(dying=True)  # a guard's cause (a lost head) explains the death better than the death
            raise
        for guard in self.guards:
            guard()

    def sleep(self, seconds):
        end = time.monotonic() + seconds
        while True:
            self.check()
            left = end - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(0.05, left))

    def _drain_output(self):
        if self._reader is not None:
            self._reader.join(timeout=0.5)  # let Ray's last words reach the log before ours

    def ray_said(self, after):
        """Ray's own lines from the first one containing `after`, e.g. its list of dead subprocesses."""
        lines = list(self.lines)
        for i, line in enumerate(lines):
            if after in line:
                return lines[i:i + 6]
        return []

    # --- the tree ------------------------------------------------------------------------------
    def descendants(self):
        """The node's processes below us (the watchdog is not part of the node)."""
        try:
            kids = psutil.Process().children(recursive=True)
        except psutil.NoSuchProcess:
            return []
        return [k for k in kids if self.watchdog is None or k.pid != self.watchdog.pid]

    def watch_components(self):
        """Remember Ray's components now, so check() notices any of them dying later."""
        self.components = {}
        for proc in self.descendants():
            name = component_name(proc)
            if name:
                self.components[proc.pid] = (proc, name)
        return sorted(name for _, name in self.components.values())

    def stop(self):
        """Stop the tree: SIGTERM `ray start`, then whatever outlives it; SIGKILL after the grace; reap.

        `ray start --block` stops its components in order (raylet, then GCS) when it alone gets SIGTERM.
        Measured: SIGTERM to the whole group at once leaves gcs_server and `ray start` hanging past 6 s,
        so the group is signalled only once `ray start` has exited. Returns what needed SIGKILL.
        """
        self.components = {}
        if self.proc is None:
            return []
        self.reap()
        if self.returncode is None:
            try:
                os.kill(self.proc.pid, signal.SIGTERM)  # not reaped yet, so the pid is still ours
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + (0 if self.hurry else self.grace)
        orphans_told = False
        while time.monotonic() < deadline and not self.hurry:
            self.reap()
            left = [p for p in self.descendants() if _alive(p)]
            if not left:
                break
            if self.returncode is not None and not orphans_told:
                # `ray start` is gone (or died mid-start): what is left is orphaned to us; tell it to go too.
                self._signal_group(signal.SIGTERM)
                for p in left:
                    _send(p, signal.SIGTERM)
                orphans_told = True
            time.sleep(0.05)
        killed = []
        self._signal_group(signal.SIGKILL)
        for p in self.descendants():
            if _alive(p):
                killed.append(component_name(p) or _name(p))
                _send(p, signal.SIGKILL)
        end = time.monotonic() + 5
        while time.monotonic() < end:
            self.reap()
            if not self.descendants():
                break
            time.sleep(0.02)
        self.reap()
        self._drain_output()
        self.close_watchdog()
        return killed

    def _signal_group(self, sig):
        try:
            os.killpg(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def _send(proc, sig):
    try:
        proc.send_signal(sig)
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        pass


def _name(proc):
    try:
        return proc.name()
    except psutil.Error:
        return str(proc.pid)
