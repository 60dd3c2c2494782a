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

# PID 1 of a host: private /tmp and /dev/shm, its own host name (own UTS namespace) when given, loopback up,
# then reap orphans until told to go.
_INIT = r"""
import os, signal, socket, subprocess, sys, time
if sys.argv[2]:
    socket.sethostname(sys.argv[2])
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
    def __init__(self, name="host", shm_size="", hostname=""):
        """shm_size: the size of the host's /dev/shm (tmpfs syntax, e.g. "300m"); default half the memory.
        hostname: the host's name (its UTS namespace is its own either way); default the machine's."""
        self.name = name
        self._unshare = subprocess.Popen(
            ["unshare", "-n", "-p", "-m", "-u", "-f", "--kill-child", "--mount-proc", "--propagation", "private",
             sys.executable, "-c", _INIT, shm_size, hostname],
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

    # --- shapes of real machines (tests/e2e/test_host_shapes.py) ---------------------------------
    # Everything below changes only the host's own namespaces: its links, its mounts (private propagation),
    # its host name. Addresses are private (RFC 1918, IPv6 ULA fd00::/8 and documentation 2001:db8::/32).
    def ip(self, *args):
        out = self.run(["ip", *args])
        assert out.returncode == 0, f"ip {' '.join(args)}: {out.stderr}"
        return out.stdout

    def sh(self, *argv):
        out = self.run(list(argv))
        assert out.returncode == 0, f"{' '.join(argv)}: {out.stderr}"
        return out.stdout

    def mount_tmpfs(self, path, size="64m", readonly=False):
        """A filesystem of its own on `path` (a data disk, a full or a read-only temp dir), seen only here."""
        self.sh("mkdir", "-p", path)
        self.sh("mount", "-t", "tmpfs", "-o", f"size={size}" + (",ro" if readonly else ""), "tmpfs", path)

    def bind_file(self, path, text):
        """`path` (an /etc file) replaced inside this host only, by a bind mount of a file in its /tmp."""
        private = f"/tmp/.shape{path.replace('/', '_')}"
        self.write(private, text)
        self.sh("mount", "--bind", private, path)

    def docker_installed(self):
        """What a machine that runs Docker has, as dockerd 20.10 leaves it between containers: docker0 DOWN
        and keeping its fe80:: address (measured on such machines), a compose network's bridge br-<12 hex>
        with an IPv4 and an IPv6 ULA subnet (`enable_ipv6: true`), and swarm's docker_gwbridge."""
        self.ip("link", "add", "docker0", "type", "bridge")
        self.ip("addr", "add", "172.17.0.1/16", "dev", "docker0")
        self.ip("-6", "addr", "add", "fe80::42:41ff:fea1:e2b2/64", "dev", "docker0")
        self.ip("link", "add", "br-3f2a9c1d0e4b", "type", "bridge")
        self.ip("addr", "add", "172.18.0.1/16", "dev", "br-3f2a9c1d0e4b")
        self.ip("-6", "addr", "add", "fd00:dead:beef::1/64", "dev", "br-3f2a9c1d0e4b")
        self.ip("link", "set", "br-3f2a9c1d0e4b", "up")
        self.ip("link", "add", "docker_gwbridge", "type", "bridge")
        self.ip("addr", "add", "172.19.0.1/16", "dev", "docker_gwbridge")
        self.ip("link", "set", "docker_gwbridge", "up")

    def vpn(self, address="10.8.0.2/24"):
        """A VPN's interface: `tun0` from `ip tuntap` (the kernel here has no wireguard link type; a tun device
        with no process behind it is what OpenVPN's looks like between connections: up, no carrier)."""
        self.ip("tuntap", "add", "dev", "tun0", "mode", "tun")
        self.ip("addr", "add", address, "dev", "tun0")
        self.ip("link", "set", "tun0", "up")

    def default_route(self, gateway):
        """A default route through `gateway` (no machine need answer there: Ray's address detection sends
        nothing, it only asks the kernel for the route)."""
        self.ip("route", "add", "default", "via", gateway)

    def name_in_hosts(self, address="127.0.1.1"):
        """The host's name in its /etc/hosts on `address`, as Debian's installer writes it (127.0.1.1)."""
        name = self.sh("hostname").strip()
        self.bind_file("/etc/hosts", f"127.0.0.1\tlocalhost\n{address}\t{name}\n::1\tlocalhost ip6-localhost\n")

    def name_unresolvable(self):
        """A host name that resolves nowhere: /etc/hosts without it, and no name server (glibc then asks
        127.0.0.1, inside this host, where nothing answers: no query leaves it)."""
        self.bind_file("/etc/hosts", "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n")
        self.bind_file("/etc/resolv.conf", "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")

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
    SUBNET6 = "fd00:200::"

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

    def plug(self, host, last_octet, ipv4=True, ipv6=False, dev="eth0"):
        """Give `host` a NIC `dev` on this switch with address 10.200.0.<last_octet> (ipv4) and/or
        fd00:200::<last_octet> (ipv6; a ULA, with the link-local fe80:: the kernel adds on every link);
        returns the first address."""
        self._ports += 1
        port = f"p{self._ports}"
        subprocess.run(["ip", "link", "add", "name", dev, "netns", str(host.pid), "type", "veth",
                        "peer", "name", port, "netns", str(self.pid)], check=True)
        self._ip("link", "set", port, "master", "br0")
        self._ip("link", "set", port, "up")
        addresses = ([f"{self.SUBNET}.{last_octet}"] if ipv4 else []) + \
            ([f"{self.SUBNET6}{last_octet}"] if ipv6 else [])
        for address in addresses:
            v6 = ":" in address
            host.ip("addr", "add", f"{address}/{64 if v6 else 24}", "dev", dev, *(["nodad"] if v6 else []))
        host.ip("link", "set", dev, "up")
        return addresses[0]

    def close(self):
        self._proc.kill()
        self._proc.wait(timeout=10)


class Lan:
    """Hosts plugged into one Switch at 10.200.0.<octet>; close() ends every host and the switch."""

    def __init__(self, prefix="host"):
        self.prefix, self.switch, self.hosts = prefix, Switch(), []

    def host(self, octet, ipv4=True, ipv6=False, **shape):
        """shape: NsHost's own arguments (shm_size, hostname)."""
        h = NsHost(f"{self.prefix}{octet}", **shape)
        self.hosts.append(h)
        try:
            self.switch.plug(h, octet, ipv4=ipv4, ipv6=ipv6)
        except BaseException:
            h.close()
            raise
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
