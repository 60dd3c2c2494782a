"""seedcore-boot on hosts shaped like the machines people have (tests/nshost.py's shapes), not only on pristine
ones: each command comes up, or refuses in one line with exit 1 or 2, never a traceback.

Shapes share hosts where one does not hide another's effect, and `--dry-run` or `check-ports` stand in for a
start where a start would add nothing: every Ray start here costs half a minute of CI.
"""

import json
import os
import signal
import sys

import pytest

pytestmark = pytest.mark.e2e
BOOT = [sys.executable, "-m", "seedcore_boot"]
HEAD_IP = "10.200.0.1"
HEAD = f"{HEAD_IP}:6379"


def one_line_refusal(out, code=(1, 2)):
    """A refusal as the CLI promises it: the exit code, one error line, no traceback."""
    text = out.stdout + out.stderr
    assert out.returncode in code, text[-3000:]
    assert "Traceback" not in text, text[-3000:]
    errors = [l for l in out.stderr.splitlines() if l.startswith("seedcore-boot: error:")]
    assert len(errors) == 1 and out.stderr.strip() == errors[0], out.stderr
    return errors[0]


def no_traceback(text):
    assert "Traceback" not in text, text[-3000:]


def boot(host, *args, timeout=120):
    out = host.run([*BOOT, *args], timeout=timeout)
    no_traceback(out.stdout + out.stderr)
    return out


# --- defect 3: a worker's temp dir is its head's -------------------------------------------------------
def test_worker_uses_checks_and_reports_its_heads_temp_dir(lan):
    """A head on a data disk (/srv/ray, a filesystem of its own), a worker on the default temp dir: Ray gives
    the worker the head's path, so the worker checks that directory, says its own setting is ignored, keeps
    its state where its own settings find it, and shows its Ray's log tails from there when Ray fails."""
    h1, h2 = lan(1), lan(2)
    for h in (h1, h2):
        h.mount_tmpfs("/srv", size="2g")  # the worker's Ray creates /srv/ray too: on its own host, never ours
    head = h1.boot("head", "--no-serve", "--node-ip-address", HEAD_IP, "--num-cpus", "1", "--temp-dir", "/srv/ray")
    head.wait_line("head ready", timeout=180)

    dry = boot(h2, "worker", "--address", HEAD, "--dry-run")
    assert dry.returncode == 0 and "--temp-dir" not in dry.stdout  # Ray would only warn that it ignores it
    assert "a worker's Ray uses its head's temp dir" in dry.stdout

    worker = h2.boot("worker", "--address", HEAD, "--num-cpus", "1")
    worker.wait_line("worker ready", timeout=180)
    out = worker.output
    assert "temp_dir /tmp/ray is ignored by Ray on a worker" in out and "its head's temp dir, /srv/ray" in out
    assert "temp dir /srv/ray:" in out and "GiB free" in out  # the free-space check ran on the right dir
    assert os.path.isdir(h2.path("/srv/ray/session_latest/logs"))
    assert not [n for n in os.listdir(h2.path("/tmp/ray")) if n.startswith("session_")]

    # status and the node file: found with the worker's own (default) settings, naming Ray's real dir
    status = boot(h2, "status", "--json")
    assert status.returncode == 0, status.stdout
    assert json.loads(status.stdout)["role"] == "worker"
    state_dir = "/tmp/ray/seedcore-boot"
    records = [json.loads(h2.read(f"{state_dir}/{n}")) for n in os.listdir(h2.path(state_dir))
               if n.startswith("worker-") and n.endswith(".json")]
    assert [r["temp_dir"] for r in records] == ["/srv/ray"]

    # Ray fails on the worker: the log tails come from the directory Ray really wrote them to
    for raylet in h2.find("raylet"):
        raylet.send_signal(signal.SIGKILL)
    assert worker.wait(60) == 1
    assert "----- /srv/ray/session_latest/logs/raylet.out -----" in worker.output, worker.output_tail(80)
    assert "seedcore-boot: error: Ray died" in worker.output
    no_traceback("\n".join(l for l in worker.output.splitlines() if not l.startswith("ray |")))  # ours
    stop = boot(h2, "stop")
    assert stop.returncode == 0 and "no running seedcore-boot node under /tmp/ray/seedcore-boot" in stop.stdout
    head.signal(signal.SIGTERM)
    assert head.wait(60) == 0


# --- --dry-run says what the start would ------------------------------------------------------------------
def test_dry_run_runs_the_port_preflight_and_the_address_check_and_fails_as_the_start_would(host):
    """Before, --dry-run printed the argv and the host checks only: a busy port, or the address check that
    failed on every machine with Docker (issue 24, defect 1), showed only once the real start ran."""
    dry = boot(host, "head", "--no-serve", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "# network: node address 127.0.0.1 on lo (detected as Ray does" in dry.stdout
    assert "# preflight: 12 ports free" in dry.stdout
    _, pid = host.hold_port(52365)  # the agent's HTTP port, a head's and a worker's
    for role in (["head"], ["worker", "--address", "10.200.0.1:6379"]):
        busy = host.run([*BOOT, *role, "--dry-run"])
        line = one_line_refusal(busy, code=(1,))
        assert f"port 52365 (dashboard_agent_http) is in use by pid {pid}" in line, line
        assert busy.stdout.startswith(f"# ray start argv ({role[0]})")  # the plan is printed, then the refusal
    assert not host.find("raylet") and not host.find("gcs_server")  # nothing was started
    # A worker's address is checked towards its head (no route to it from this host: Ray would fall back to
    # loopback), as its start checks it once the head has answered.
    line = one_line_refusal(host.run([*BOOT, "worker", "--address", "10.200.0.1:6379", "--dashboard-agent-http-port",
                                      "52366", "--dry-run"]), code=(1,))
    assert "this node would advertise 127.0.0.1 (detected as Ray does: no route towards 10.200.0.1)" in line, line


# --- a machine with Docker, several networks, a VPN and tight limits ---------------------------------------
NOFILE = "--nofile=1024:1024"  # systemd's and many distributions' hard limit for a service or a login


def limited(host, *args):
    """`seedcore-boot ARGS` under a hard open-files limit of 1024, its output collected."""
    return host.spawn(["prlimit", NOFILE, "--", *BOOT, *args])


def test_a_docker_machine_with_several_networks_a_vpn_and_tight_limits(lan):
    """The head's machine runs Docker (docker0 down with its fe80::, a compose bridge with an IPv6 ULA,
    docker_gwbridge), has a dual-stack NIC, a second NIC, a VPN, a default route, its name on 127.0.1.1 as
    Debian writes it, 256 MB of /dev/shm and 1024 open files. The worker's runs Docker too, is dual-stack,
    has a VPN, no default route and a name that resolves nowhere. Both come up, say which address they
    advertise on which NIC and why, and `status`, `check-ports` and `stop` answer on both."""
    h1 = lan(1, ipv6=True, shm_size="256m", hostname="head-laptop")
    h2 = lan(2, ipv6=True, hostname="worker-7f3a")
    for h in (h1, h2):
        h.docker_installed()
        h.vpn()
    h1.ip("-6", "addr", "add", "2001:db8:200::1/64", "dev", "eth0", "nodad")  # a global (documentation) IPv6
    h1.ip("link", "add", "eth1", "type", "veth", "peer", "name", "eth1-peer")  # a second NIC, with carrier
    h1.ip("addr", "add", "10.201.0.1/24", "dev", "eth1")
    for dev in ("eth1", "eth1-peer"):
        h1.ip("link", "set", dev, "up")
    h1.default_route("10.200.0.254")
    h1.name_in_hosts("127.0.1.1")
    h2.name_unresolvable()

    for h, role in ((h1, "head"), (h2, "worker")):
        free = boot(h, "check-ports", "--role", role)
        assert free.returncode == 0 and "BUSY" not in free.stdout, free.stdout

    # The head advertises the default route's NIC, says so and names the others (a VPN's among them).
    dry = boot(h1, "head", "--no-serve", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    said = "# network: node address 10.200.0.1 on eth0 (detected as Ray does: the route towards 8.8.8.8)"
    assert said in dry.stdout and "10.201.0.1 on eth1" in dry.stdout and "10.8.0.2 on tun0" in dry.stdout
    assert "172.17.0.1" not in dry.stdout.split(said, 1)[1].splitlines()[0]  # never Docker's bridges
    assert "# preflight: " in dry.stdout and "ports free" in dry.stdout
    assert "object store" in dry.stdout and "open files" in dry.stdout

    head = limited(h1, "head", "--no-serve", "--num-cpus", "1")
    head.wait_line("head ready", timeout=180)
    assert "node address 10.200.0.1 on eth0" in head.output and "gcs=10.200.0.1:6379" in head.output
    assert "open files: soft limit raised from 1024" not in head.output  # the hard limit is the ceiling
    assert "hard limit 1024 keeps it below 65536" in head.output

    dry = boot(h2, "worker", "--address", HEAD, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "# network: node address 10.200.0.2 on eth0 (detected as Ray does: the route towards 10.200.0.1)" \
        in dry.stdout and "10.8.0.2 on tun0" in dry.stdout
    worker = limited(h2, "worker", "--address", HEAD, "--num-cpus", "1")
    worker.wait_line("worker ready", timeout=180)
    assert "node address 10.200.0.2 on eth0" in worker.output

    for h, role in ((h1, "head"), (h2, "worker")):
        status = boot(h, "status")
        assert status.returncode == 0 and status.stdout.startswith(f"{role} (pid "), status.stdout
        busy = boot(h, "check-ports", "--role", role)
        assert busy.returncode == 1 and "BUSY" in busy.stdout, busy.stdout
    # A third machine on the same LAN with a read-only, then a full temp dir: refused in one line each,
    # the worker's full one once its head has said which directory its Ray uses.
    h3 = lan(3)
    h3.mount_tmpfs("/tmp/ray", size="2g", readonly=True)  # space enough: only the write fails
    for args in (["head"], ["head", "--dry-run"], ["worker", "--address", HEAD], ["worker", "--address", HEAD,
                                                                                    "--dry-run"]):
        line = one_line_refusal(h3.run([*BOOT, *args], timeout=120))
        assert "cannot write" in line and "/tmp/ray" in line and "Read-only file system" in line, line
    assert boot(h3, "status").returncode == 1 and boot(h3, "stop").returncode == 0
    h3.sh("umount", "/tmp/ray")
    h3.mount_tmpfs("/tmp/ray", size="1m")
    line = one_line_refusal(h3.run([*BOOT, "head", "--dry-run"]))
    assert "the temp dir /tmp/ray has 1 MiB free" in line, line
    line = one_line_refusal(h3.run([*BOOT, "worker", "--address", HEAD], timeout=120))
    assert "the temp dir /tmp/ray has 1 MiB free" in line and "every worker machine can write" in line, line
    assert h3.processes() == []

    for h, proc in ((h2, worker), (h1, head)):
        stop = boot(h, "stop", timeout=180)
        assert stop.returncode == 0 and "stopped" in stop.stdout, stop.stdout
        assert proc.wait(60) == 0
        no_traceback(proc.output)
    assert h2.processes() == [] and h1.processes() == []


# --- offline machines: no default route -------------------------------------------------------------------
def test_an_offline_debian_laptop_comes_up_on_its_host_names_address_and_says_so(host):
    """No network but loopback, no default route, the host name on 127.0.1.1 as Debian's installer writes
    /etc/hosts: Ray 2.20 finds no route towards 8.8.8.8 and takes the host name's address, 127.0.1.1. The
    head comes up there, a one-machine cluster, and says that no other machine could join it."""
    host.sh("hostname", "debian-laptop")
    host.name_in_hosts("127.0.1.1")
    dry = boot(host, "head", "--no-serve", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert ("# network: node address 127.0.1.1 (detected as Ray does: no route towards 8.8.8.8, so host "
            "name 'debian-laptop'): loopback: this host has no network address but loopback") in dry.stdout
    head = host.boot("head", "--no-serve", "--num-cpus", "1")
    head.wait_line("head ready", timeout=180)
    assert "gcs=127.0.1.1:6379" in head.output
    assert "the head's node address is 127.0.1.1 (loopback): no worker on another host can join" in head.output
    status = boot(host, "status")
    assert status.returncode == 0, status.stdout
    assert boot(host, "stop", timeout=120).returncode == 0
    assert head.wait(60) == 0
    assert host.processes() == []


def test_a_host_name_that_resolves_nowhere_falls_back_to_loopback_and_says_so(host):
    """Ray's fallback when the host name does not resolve either: 127.0.0.1 (a dry run shows it; the start
    is the same as on the laptop above)."""
    host.sh("hostname", "nowhere-7f3a")
    host.name_unresolvable()
    dry = boot(host, "head", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert ("# network: node address 127.0.0.1 on lo (detected as Ray does: no route towards 8.8.8.8): loopback: "
            "this host has no network address but loopback") in dry.stdout
    worker = boot(host, "worker", "--address", "ray-head:6379", "--dry-run")
    assert worker.returncode == 0, worker.stderr
    assert "# network: node address: detected towards the head once 'ray-head' resolves" in worker.stdout
    assert boot(host, "check-ports").returncode == 0 and boot(host, "stop").returncode == 0


# --- IPv6 only ----------------------------------------------------------------------------------------------
def test_ipv6_only_hosts_are_refused_in_one_line_where_ray_cannot_work(lan):
    """Measured (see nodeaddr.ipv4_only): Ray 2.20 is IPv4 only. On an IPv6-only host its head comes up on
    127.0.0.1 alone (one machine; the dry run says why), an IPv6 node address makes `ray start` die with
    "Failed to start GCS", and a worker cannot reach an IPv6 head (its GCS listens on IPv4): both refused
    before anything starts."""
    h1, h2 = lan(1, ipv4=False, ipv6=True), lan(2, ipv4=False, ipv6=True)
    dry = boot(h1, "head", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "no IPv4 address but loopback, and Ray 2.20 runs on IPv4 only" in dry.stdout
    for args in (["head", "--node-ip-address", "fd00:200::1"], ["head", "--node-ip-address", "fd00:200::1",
                                                               "--dry-run"]):
        line = one_line_refusal(h1.run([*BOOT, *args]), code=(2,))
        assert "node_ip_address fd00:200::1 is IPv6, and Ray 2.20 runs on IPv4 only" in line, line
    for args in (["worker", "--address", "[fd00:200::1]:6379"], ["worker", "--address", "[fd00:200::1]:6379",
                                                                 "--dry-run"]):
        line = one_line_refusal(h2.run([*BOOT, *args]), code=(2,))
        assert "the head's address fd00:200::1 is IPv6" in line, line
    # An IPv4 head is out of this host's reach: the worker's wait says so and gives up on its deadline.
    line = one_line_refusal(h2.run([*BOOT, "worker", "--address", HEAD, "--wait-timeout", "3"], timeout=60))
    assert "was not reachable within 3 s" in line, line
    for h in (h1, h2):
        assert boot(h, "check-ports").returncode == 0
        status = boot(h, "status")
        assert status.returncode == 1 and "no seedcore-boot node found" in status.stdout
        assert boot(h, "stop").returncode == 0
        assert h.processes() == []


# --- /dev/shm as Docker gives it ----------------------------------------------------------------------------
def test_dockers_default_dev_shm_is_refused_in_one_line(lan):
    """64 MB, below Ray's 75 MiB minimum object store: refused before anything starts, for either role."""
    h = lan(1, shm_size="64m")
    for args in (["head"], ["head", "--dry-run"], ["worker", "--address", HEAD], ["worker", "--address", HEAD,
                                                                                  "--dry-run"]):
        line = one_line_refusal(h.run([*BOOT, *args]))
        assert "/dev/shm" in line, line
    assert boot(h, "check-ports").returncode == 0 and boot(h, "stop").returncode == 0
