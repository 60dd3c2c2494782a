"""Throwaway hosts for end-to-end tests: each has its own network, PID and mount namespaces with a private
/tmp and /dev/shm, so a test's Ray never meets another's, and ending the host's PID 1 ends all of it.

Traffic to a host's servers is sent from inside that host (nsenter), never from the root namespace.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import psutil

# PID 1 of a host: private /tmp and /dev/shm, loopback up, then reap orphans until told to go.
_INIT = r"""
import os, signal, subprocess, sys, time
for target, opts in (("/tmp", []), ("/dev/shm", ["-o", f"size={sys.argv[1]}"] if sys.argv[1] else [])):
    subprocess.run(["mount", "-t", "tmpfs", *opts, "tmpfs", target], check=True)
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
signal.signal(signal.SIGTERM, lambda *a: os._exit(0))
print("ready", flush=True)
while True:
    try:
        os.wait()
    except ChildProcessError:
        time.sleep(0.2)
"""

_HTTP = r"""
import json, sys, urllib.request, urllib.error
method, url, body = sys.argv[1], sys.argv[2], sys.argv[3]
data = body.encode() if body else None
req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
try:
    with urllib.request.urlopen(req, timeout=float(sys.argv[4])) as r:
        out = {"status": r.status, "body": r.read().decode("utf-8", "replace")}
except urllib.error.HTTPError as e:
    out = {"status": e.code, "body": e.read().decode("utf-8", "replace")}
except Exception as e:
    out = {"status": 0, "body": repr(e)}
print(json.dumps(out))
"""

_HOLD = r"""
import os, socket, sys, time
host, port = sys.argv[1], int(sys.argv[2])
fam = socket.AF_INET6 if ":" in host else socket.AF_INET
s = socket.socket(fam, socket.SOCK_STREAM)
s.bind((host, port))
s.listen()
print(os.getpid(), flush=True)
time.sleep(3600)
"""


def can_make_hosts():
    """(ok, reason): namespaces need root and util-linux's unshare/nsenter and iproute2."""
    if os.geteuid() != 0:
        return False, "needs root to create network/PID/mount namespaces"
    for tool in ("unshare", "nsenter", "ip", "mount"):
        if not shutil.which(tool):
            return False, f"needs `{tool}` (util-linux / iproute2)"
    return True, ""


def base_env(extra=None):
    """A clean environment for processes on a host: nothing of the test runner's leaks into Ray."""
    env = {"PATH": os.path.dirname(sys.executable) + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
           "HOME": "/root", "LANG": "C.UTF-8", "RAY_USAGE_STATS_ENABLED": "0"}
    env.update(extra or {})
    return env


class NsHost:
    def __init__(self, name="host", shm_size=""):
        """shm_size: the size of the host's /dev/shm (tmpfs syntax, e.g. "300m"); default half the memory."""
        self.name = name
        self._unshare = subprocess.Popen(
            ["unshare", "-n", "-p", "-m", "-f", "--kill-child", "--mount-proc", "--propagation", "private",
             sys.executable, "-c", _INIT, shm_size],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self._unshare.stdout.readline().strip()
        if line != "ready":
            err = self._unshare.stderr.read() if self._unshare.poll() is not None else ""
            self.close()
            raise RuntimeError(f"host {name} did not come up: {line!r} {err}")
        self.pid = psutil.Process(self._unshare.pid).children()[0].pid
        self._pidns = os.readlink(f"/proc/{self.pid}/ns/pid")
        self._procs = []

    # --- running things on the host ---------------------------------------------------------
    def argv(self, argv):
        return ["nsenter", "-t", str(self.pid), "-n", "-m", "-p", "--", *argv]

    def run(self, argv, env=None, timeout=60, input=None):
        return subprocess.run(self.argv(argv), env=base_env(env), cwd="/", capture_output=True, text=True,
                              timeout=timeout, input=input)

    def spawn(self, argv, env=None):
        proc = Proc(subprocess.Popen(self.argv(argv), env=base_env(env), cwd="/", stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
        self._procs.append(proc)
        return proc

    def boot(self, *args, env=None):
        """`seedcore-boot ARGS` on this host, with its output collected."""
        return self.spawn([sys.executable, "-m", "seedcore_boot", *args], env=env)

    def python(self, code, *args, env=None, timeout=60):
        return self.run([sys.executable, "-c", code, *map(str, args)], env=env, timeout=timeout)

    def http(self, url, method="GET", body=None, timeout=5.0):
        """(status, text) of a request made from inside the host."""
        payload = "" if body is None else (body if isinstance(body, str) else json.dumps(body))
        out = self.python(_HTTP, method, url, payload, timeout, timeout=timeout + 30)
        got = json.loads(out.stdout)
        return got["status"], got["body"]

    def hold_port(self, port, host="0.0.0.0"):
        """A plain process listening on `port`; returns (Proc, its pid as seen inside the host)."""
        proc = self.spawn([sys.executable, "-c", _HOLD, host, str(port)])
        inner_pid = int(proc.wait_line(lambda l: l.strip().isdigit(), timeout=30).strip())
        return proc, inner_pid

    # --- looking at the host ----------------------------------------------------------------
    def path(self, path, _depth=0):
        """Where `path` on the host is, seen from here (its private /tmp included).

        Symlinks are followed inside the host: through /proc/PID/root an absolute link target would
        otherwise resolve against our own root (session_latest is one).
        """
        root = f"/proc/{self.pid}/root"
        done = ""
        parts = [p for p in path.split("/") if p]
        for i, part in enumerate(parts):
            candidate = f"{done}/{part}"
            if os.path.islink(root + candidate) and _depth < 20:
                target = os.readlink(root + candidate)
                target = target if target.startswith("/") else f"{done}/{target}"
                rest = "/".join(parts[i + 1:])
                return self.path(os.path.normpath(target) + ("/" + rest if rest else ""), _depth + 1)
            done = candidate
        return root + (done or "/")

    def read(self, path):
        with open(self.path(path), encoding="utf-8", errors="replace") as fh:
            return fh.read()

    def write(self, path, text):
        full = self.path(path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w", encoding="utf-8") as fh:
            fh.write(text)

    def processes(self):
        """Live processes on the host other than its PID 1 (zombies are dead: not counted)."""
        found = []
        for p in psutil.process_iter(["pid", "name", "status"]):
            if p.pid == self.pid:
                continue
            try:
                if os.readlink(f"/proc/{p.pid}/ns/pid") == self._pidns and p.info["status"] != psutil.STATUS_ZOMBIE:
                    found.append(p)
            except OSError:
                continue
        return found

    def find(self, name):
        return [p for p in self.processes() if p.info["name"] == name]

    def close(self):
        for proc in self._procs:
            proc.kill()
        try:
            if self._unshare.poll() is None:
                if getattr(self, "pid", None):
                    os.kill(self.pid, signal.SIGKILL)  # PID 1 gone: the kernel ends everything inside
                self._unshare.kill()
            self._unshare.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass


class Proc:
    """A process started through nsenter, its output gathered line by line."""

    def __init__(self, popen):
        self.popen = popen
        self.lines = []
        self.stamps = []  # time.monotonic() at which each line arrived
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for raw in iter(self.popen.stdout.readline, b""):
            with self._cond:
                self.stamps.append(time.monotonic())
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    @property
    def output(self):
        with self._cond:
            return "\n".join(self.lines)

    def wait_line(self, match, timeout):
        """The first output line for which match(line) (or `match in line`) holds; fail on exit or timeout."""
        test = match if callable(match) else (lambda l: match in l)
        end = time.monotonic() + timeout
        seen = 0
        with self._cond:
            while True:
                for line in self.lines[seen:]:
                    if test(line):
                        return line
                seen = len(self.lines)
                if self.popen.poll() is not None and not self._reader.is_alive():
                    raise AssertionError(f"exited ({self.popen.returncode}) before {match!r}:\n{self.output_tail()}")
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {match!r} within {timeout} s:\n{self.output_tail()}")
                self._cond.wait(min(left, 0.5))

    def output_tail(self, n=60):
        return "\n".join(self.lines[-n:])

    def inner(self):
        """The process nsenter started (the one to signal: nsenter itself does not forward signals)."""
        for _ in range(100):
            kids = psutil.Process(self.popen.pid).children()
            if kids:
                return kids[0]
            time.sleep(0.05)
        raise AssertionError("nsenter started no child")

    def signal(self, sig):
        self.inner().send_signal(sig)

    def wait(self, timeout):
        rc = self.popen.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return rc

    def kill(self):
        if self.popen.poll() is None:
            try:
                for child in psutil.Process(self.popen.pid).children(recursive=True):
                    child.kill()
            except psutil.Error:
                pass
            self.popen.kill()
            self.popen.wait(timeout=10)


class Switch:
    """An Ethernet switch in a network namespace of its own: hosts plugged into it reach each other on
    10.200.0.0/24, and nothing of it exists in the root namespace (no address, no route, no link)."""

    SUBNET = "10.200.0"

    def __init__(self):
        self._proc = subprocess.Popen(["unshare", "-n", "sleep", "infinity"], stdin=subprocess.DEVNULL)
        self.pid = self._proc.pid
        for _ in range(100):  # unshare execs sleep once the namespace exists
            if os.readlink(f"/proc/{self.pid}/ns/net") != os.readlink("/proc/self/ns/net"):
                break
            time.sleep(0.02)
        self._ip("link", "add", "br0", "type", "bridge")
        self._ip("link", "set", "br0", "up")
        self._ports = 0

    def _ip(self, *args):
        subprocess.run(["nsenter", "-t", str(self.pid), "-n", "ip", *args], check=True)

    def plug(self, host, last_octet):
        """Give `host` an eth0 on this switch with address 10.200.0.<last_octet>; returns the address."""
        self._ports += 1
        port = f"p{self._ports}"
        subprocess.run(["ip", "link", "add", "name", "eth0", "netns", str(host.pid), "type", "veth",
                        "peer", "name", port, "netns", str(self.pid)], check=True)
        self._ip("link", "set", port, "master", "br0")
        self._ip("link", "set", port, "up")
        address = f"{self.SUBNET}.{last_octet}"
        for args in (["addr", "add", f"{address}/24", "dev", "eth0"], ["link", "set", "eth0", "up"]):
            out = host.run(["ip", *args])
            assert out.returncode == 0, out.stderr
        return address

    def close(self):
        self._proc.kill()
        self._proc.wait(timeout=10)


class Lan:
    """Hosts plugged into one Switch at 10.200.0.<octet>; close() ends every host and the switch."""

    def __init__(self, prefix="host"):
        self.prefix, self.switch, self.hosts = prefix, Switch(), []

    def host(self, octet):
        h = NsHost(f"{self.prefix}{octet}")
        self.hosts.append(h)
        self.switch.plug(h, octet)
        return h

    def close(self):
        for h in self.hosts:
            h.close()
        self.switch.close()


def wait_for(what, test, timeout, step=1.0):
    """test()'s first true result, polled every `step` s; AssertionError with the last one after `timeout`."""
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        last = test()
        if last:
            return last
        time.sleep(step)
    raise AssertionError(f"{what} not within {timeout} s (last: {last!r})")
