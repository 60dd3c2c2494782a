"""Emulated Docker hosts for end-to-end tests: machines with an engine each, on one LAN, with Docker's own
semantics. Each host is a network namespace (`ip netns add`) plugged into a switch (nshost.Switch), and runs
a dockerd of its own inside it: its own images, containers, names and iptables, and a `--network host`
container there sees the host's address. Compose files run against a host through DOCKER_HOST.

Facts this relies on (dockerd 20.10, measured here):
- dockerd is entered with `nsenter --net=/run/netns/NAME`, never `ip netns exec`: that mounts a fresh /sys,
  which hides the cgroup mounts ("Devices cgroup isn't mounted").
- Each engine has its own --data-root, --exec-root, -H unix:// socket, --pidfile and containerd namespaces,
  and starts its own containerd under its exec root (about 1 s to answer).
- Images come from the machine's main engine by `docker save | docker load` (about 14 s per GB).
- An engine's DOCKER-USER chain drops new connections out of the host's uplink before its first container,
  as tests/docker/engine.sh does for the main engine (there: the default route's interface).
- On the way out, <exec-root>/netns/* are bind mounts of namespaces: they are unmounted (with anything an
  engine killed mid-run left mounted under its directory) before the directory goes.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import psutil

from tests import REPO
from tests.nshost import _HTTP, Switch, wait_for  # noqa: F401 (wait_for: for the tests that use these hosts)

DOCKER_DIR = os.path.join(REPO, "docker")
TESTS_DOCKER = os.path.join(REPO, "tests", "docker")


def engine_or_skip():
    """The machine's main engine up and the stand-in images built; skip (fail under SEEDCORE_REQUIRE_ALL=1,
    as in CI) where that cannot be: it needs root, dockerd, compose v1, mmdebstrap, iptables."""
    from tests.skips import need

    missing = [t for t in ("docker", "dockerd", "docker-compose", "mmdebstrap", "iptables") if not shutil.which(t)]
    why = (f"needs {', '.join(missing)}" if missing else "needs root" if os.geteuid() != 0 else None)
    need(not why, why)
    for script, args in (("engine.sh", ["start"]), ("standins.sh", [])):
        out = subprocess.run(["bash", os.path.join(TESTS_DOCKER, script), *args], capture_output=True, text=True,
                             timeout=900)
        assert out.returncode == 0, f"{script}: {out.stdout}\n{out.stderr}"


def _kill(procs):
    """SIGKILL each (by pid; these are processes of an engine the test started) and reap."""
    for p in procs:
        try:
            p.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(procs, timeout=10)


def netns_inode(name):
    return os.stat(f"/run/netns/{name}").st_ino


class DockerHost:
    """One machine: a network namespace on the switch at 10.200.0.<octet>, and its own Docker engine."""

    def __init__(self, name, switch, octet, root):
        self.name, self.dir, self._switch = name, os.path.join(root, name), switch
        self.sock = f"unix://{self.dir}/docker.sock"
        self.netns, self.port = f"/run/netns/{name}", f"p{octet}"
        self.address = f"{Switch.SUBNET}.{octet}"
        self._engine = None

    def plug(self):
        """The namespace, with loopback up and eth0 on the switch."""
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        self.run_in(["ip", "link", "set", "lo", "up"], check=True)
        subprocess.run(["ip", "link", "add", "name", "eth0", "netns", self.name, "type", "veth", "peer", "name",
                        self.port, "netns", str(self._switch.pid)], check=True)
        self._switch_ip("link", "set", self.port, "master", "br0")
        self._switch_ip("link", "set", self.port, "up")
        self.run_in(["ip", "addr", "add", f"{self.address}/24", "dev", "eth0"], check=True)
        self.run_in(["ip", "link", "set", "eth0", "up"], check=True)

    def _switch_ip(self, *args):
        subprocess.run(["nsenter", "-t", str(self._switch.pid), "-n", "ip", *args], check=True)

    # --- the engine ---------------------------------------------------------------------------
    def start_engine(self):
        os.makedirs(self.dir, exist_ok=True)
        log = open(os.path.join(self.dir, "dockerd.log"), "wb")
        self._engine = subprocess.Popen(
            ["nsenter", f"--net={self.netns}", "dockerd", "--data-root", f"{self.dir}/data",
             "--exec-root", f"{self.dir}/exec", "-H", self.sock, "--pidfile", f"{self.dir}/docker.pid",
             "--containerd-namespace", self.name, "--containerd-plugins-namespace", f"{self.name}-plugins"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        end = time.monotonic() + 60
        while self.docker("info", check=False, timeout=30).returncode != 0:
            assert self._engine.poll() is None and time.monotonic() < end, \
                f"dockerd on {self.name} did not start:\n{self.engine_log()[-3000:]}"
            time.sleep(0.2)
        # Before any container: nothing forwarded by this engine leaves through the uplink.
        self.run_in(["iptables", "-I", "DOCKER-USER", "-o", "eth0", "-m", "conntrack", "--ctstate", "NEW",
                     "-j", "DROP"], check=True)

    def engine_log(self):
        with open(os.path.join(self.dir, "dockerd.log"), encoding="utf-8", errors="replace") as fh:
            return fh.read()

    def docker(self, *args, check=True, timeout=120):
        out = subprocess.run(["docker", "-H", self.sock, *args], capture_output=True, text=True, timeout=timeout)
        if check:
            assert out.returncode == 0, f"docker {' '.join(args)} on {self.name} -> {out.returncode}\n" \
                                        f"{out.stdout}\n{out.stderr}"
        return out

    def compose(self, *args, env=None, check=True, timeout=300):
        """docker-compose ARGS in docker/ (the shipped files), against this host's engine."""
        full = dict(os.environ, DOCKER_HOST=self.sock, **(env or {}))
        out = subprocess.run(["docker-compose", *args], cwd=DOCKER_DIR, env=full, capture_output=True, text=True,
                             timeout=timeout)
        if check:
            assert out.returncode == 0, f"docker-compose {' '.join(args)} on {self.name} -> {out.returncode}\n" \
                                        f"{out.stdout}\n{out.stderr}"
        return out

    def containers(self):
        return self.docker("ps", "-aq").stdout.split()

    # --- the network namespace ----------------------------------------------------------------
    def run_in(self, argv, check=False, timeout=60):
        return subprocess.run(["nsenter", f"--net={self.netns}", *argv], capture_output=True, text=True,
                              timeout=timeout, check=check)

    def spawn_in(self, argv):
        return subprocess.Popen(["nsenter", f"--net={self.netns}", *argv], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def http(self, url, method="GET", body=None, timeout=5.0):
        """(status, text) of a request made from this host (its loopback is where its servers listen)."""
        payload = "" if body is None else (body if isinstance(body, str) else json.dumps(body))
        out = self.run_in([sys.executable, "-c", _HTTP, method, url, payload, str(timeout)], timeout=timeout + 30)
        got = json.loads(out.stdout)
        return got["status"], got["body"]

    def processes(self):
        """Every process in this host's network namespace: its engine, containerd, shims, host-network
        containers."""
        inode, found = netns_inode(self.name), []
        for p in psutil.process_iter(["pid"]):
            try:
                if os.stat(f"/proc/{p.pid}/ns/net").st_ino == inode:
                    found.append(p)
            except OSError:
                continue
        return found

    # --- endings ------------------------------------------------------------------------------
    def vanish(self):
        """The machine disappears: off the LAN at once (no reset, no goodbye: packets to it are lost), then
        every process of it killed, its containers' included."""
        self._switch_ip("link", "set", self.port, "down")
        victims = self.processes()
        for cid in self.docker("ps", "-q", check=False, timeout=10).stdout.split():
            pid = self.docker("inspect", "--format", "{{.State.Pid}}", cid, check=False, timeout=10).stdout.strip()
            if pid.isdigit() and int(pid):
                try:
                    root = psutil.Process(int(pid))
                    victims += [root, *root.children(recursive=True)]
                except psutil.Error:
                    pass
        _kill(victims)
        if self._engine:
            self._engine.wait(timeout=10)

    def close(self):
        """Stop the engine by its pid (its containers with it), unmount, remove its directory and namespace."""
        if self._engine and self._engine.poll() is None:
            for cid in self.docker("ps", "-aq", check=False, timeout=30).stdout.split():
                self.docker("rm", "-f", cid, check=False, timeout=60)
            self._engine.send_signal(signal.SIGTERM)
            try:
                self._engine.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._engine.kill()
                self._engine.wait(timeout=10)
        if os.path.exists(self.netns):
            _kill(self.processes())
        self._unmount_all()
        shutil.rmtree(self.dir, ignore_errors=True)
        if os.path.exists(self.netns):
            subprocess.run(["ip", "netns", "del", self.name], check=False)

    def _unmount_all(self):
        """Whatever is mounted under this host's directory (<exec-root>/netns/* first among them), deepest
        first."""
        with open("/proc/self/mountinfo", encoding="utf-8") as fh:
            points = [line.split()[4] for line in fh]
        mine = sorted({p for p in points if p == self.dir or p.startswith(self.dir + "/")}, key=len, reverse=True)
        for point in mine:
            subprocess.run(["umount", "-l", point], check=False, capture_output=True)


class DockerLan:
    """Hosts on one switch; close() ends every engine, namespace and directory, whatever state they are in."""

    def __init__(self, prefix, size="8g"):
        self.prefix, self.hosts = prefix, []
        # The engines' data roots in memory: a GB of small files per engine loads faster there, and goes with
        # one unmount instead of a minute of deletes on a busy disk (measured: 21 s per engine on disk).
        self.root = tempfile.mkdtemp(prefix=f"{prefix}-", dir="/var/tmp")
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", self.root], check=True)
        try:
            self.switch = Switch()
        except BaseException:
            self._unmount_root()
            raise

    def host(self, octet):
        h = DockerHost(f"{self.prefix}{octet}", self.switch, octet, self.root)
        self.hosts.append(h)  # first: close() cleans up whatever part of it came up
        h.plug()
        h.start_engine()
        return h

    def close(self):
        for h in self.hosts:
            h.close()
        self.switch.close()
        self._unmount_root()

    def _unmount_root(self):
        subprocess.run(["umount", self.root], check=False)
        os.rmdir(self.root)


def load_images(hosts, images, tags=()):
    """`docker save IMAGES` from the main engine, loaded into every host's engine at once (one stream, fanned
    out); then `docker tag SRC DST` on each for every (SRC, DST) in tags."""
    save = subprocess.Popen(["docker", "save", *images], stdout=subprocess.PIPE)
    loads = [subprocess.Popen(["docker", "-H", h.sock, "load", "-q"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for h in hosts]
    broken = []
    while True:
        chunk = save.stdout.read(1 << 20)
        if not chunk:
            break
        for load in loads:
            if load in broken:
                continue
            try:
                load.stdin.write(chunk)
            except BrokenPipeError:
                broken.append(load)
    for load in loads:
        if load not in broken:
            load.stdin.close()
    outs = [load.stdout.read().decode(errors="replace") for load in loads]
    for load in loads:
        load.wait(timeout=300)
    assert save.wait(timeout=60) == 0, "docker save failed"
    for h, load, out in zip(hosts, loads, outs):
        assert load.returncode == 0, f"docker load on {h.name}: {out}"
        for src, dst in tags:
            h.docker("tag", src, dst)


class Load:
    """Clients in a loop through a host's Serve proxy, from inside that host, until stop(): every failure
    with its time and cause."""

    SCRIPT = r"""
import json, os, sys, threading, time, urllib.request
url, stop_file, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
ok, failed = [0], []
def client():
    while not os.path.exists(stop_file):
        try:
            with urllib.request.urlopen(url, timeout=30) as r:
                r.read()
                ok[0] += 1
        except Exception as exc:
            failed.append([round(time.time(), 2), repr(exc)[:200]])
            time.sleep(0.05)
threads = [threading.Thread(target=client) for _ in range(n)]
[t.start() for t in threads]
print("load running", flush=True)
[t.join() for t in threads]
print(json.dumps({"ok": ok[0], "failed": failed}), flush=True)
"""

    def __init__(self, host, url, clients=4):
        self._stop_file = os.path.join(host.dir, "stop-load")
        self._proc = host.spawn_in([sys.executable, "-c", self.SCRIPT, url, self._stop_file, str(clients)])
        line = self._proc.stdout.readline()
        assert line.strip() == "load running", line + self._proc.stdout.read()

    def stop(self):
        """{"ok": n, "failed": [[time, cause], ...]}"""
        with open(self._stop_file, "w"):
            pass
        out, _ = self._proc.communicate(timeout=90)
        return json.loads(out.strip().splitlines()[-1])
