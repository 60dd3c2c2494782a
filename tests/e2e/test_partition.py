"""A network blip costs no worker (issue 28): a worker rides out a cut link as long as Ray's head would keep
its node, and leaves at once when the head that answers is another cluster.

Emulated hosts (tests/nshost.py): the link is cut with `ip link set down` on the switch's side of the
worker's veth, so neither host sees a link change, only silence, as across a real switch. The cut cases share
one cluster (10 and 30 s cuts, a flapping link, a 50 s cut, then a cut past Ray's threshold), in file order,
each once the head's health checks of the node pass again. No timing is asserted: events, exit codes, the
same PID, ALIVE, and deadlines only a hang reaches; the figures are printed, and measured in the bench
(`python -m bench --only partition`).

What Ray's head decides is the reference: it declares a node dead after 5 failed health checks in a row
(10 s timeout, 3 s apart), and the checks go on failing for a while after a heal, until TCP retransmits
(measured here at load average 20-33, at Ray's defaults: a 30 s cut counted 4 in one run and 5, the node DEAD,
in three others; a 50 s cut 4 in one and 5 in three; plain Ray's workers lose the node alike:
bench/partition.py). So a cut's test asserts that the worker does what the head decided: kept, it is the same
worker with its actor intact; declared dead, it leaves in one line with nothing left.

The cut cases run at SCALE of Ray's figures (SEEDCORE_PARTITION_SCALE; 0.5 unless set, 1: Ray's defaults, as
the figures above were measured): the head's checks every 1.5 s with a 5 s timeout, RAY_health_check_period_ms
and _timeout_ms for the head's GCS and the worker alike (raydeath.py reads them), so the threshold is 32.5 s
instead of 65 s, and every cut, the flapping and the quiet that shows a check passed are halved with it. Each
case's point is a ratio, and it holds: the "10 s" cut stays under one check's timeout + period, the "30" and
"50 s" cuts at the same fractions of the threshold, the flapping's phases at the same fraction of a check's
timeout, the last cut past the threshold. What follows a heal scales too: TCP's retransmits on the GCS's
connection to the raylet come at intervals that double (200 ms, 400 ms, ... from the cut on), so halving
every figure leaves the first retransmit after a heal at about the same point relative to the checks. The
tests keep the names of Ray's figures; the printed lines give both.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from tests.skips import need
from tests.nshost import Lan, can_make_hosts, wait_for

pytestmark = pytest.mark.e2e
HEAD_IP = "10.200.0.1"
HEAD = f"{HEAD_IP}:6379"
WORKER_IP = "10.200.0.2"
SCALE = float(os.environ.get("SEEDCORE_PARTITION_SCALE") or 0.5)
# Ray's GCS reads each as RAY_<name> at start (ray_config_def.h, health_check_period_ms, health_check_timeout_ms;
# 5 failures as by default); none at scale 1, where the worker's line names Ray's defaults.
RAY_CHECKS = {} if SCALE == 1 else {"RAY_health_check_period_ms": str(round(3000 * SCALE)),
                                    "RAY_health_check_timeout_ms": str(round(10000 * SCALE))}
THRESHOLD_S = 65 * SCALE  # 5 × (timeout + period)
QUIET_S = 20 * SCALE  # checks_pass_again's quiet: past one check's timeout + period


def scaled(seconds):
    """A duration given at Ray's defaults, at this run's SCALE."""
    return seconds * SCALE

ACTOR = r"""
import json, sys, ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
ray.init(address="10.200.0.1:6379", namespace="partition", logging_level="ERROR", log_to_driver=False)

@ray.remote(num_cpus=0)
class Keeper:
    def __init__(self):
        self.n = 0
    def bump(self):
        self.n += 1
        return self.n, ray.get_runtime_context().get_node_id()

if sys.argv[1] == "create":
    node = [n["NodeID"] for n in ray.nodes() if n["Alive"] and n["NodeManagerAddress"] == "10.200.0.2"][0]
    keeper = Keeper.options(name="keeper", lifetime="detached", scheduling_strategy=
                            NodeAffinitySchedulingStrategy(node, soft=False)).remote()
else:
    keeper = ray.get_actor("keeper")
if sys.argv[1] == "load":  # calls for argv[2] seconds, each with its own deadline; counts what failed
    import time
    end, ok, failed = time.monotonic() + float(sys.argv[2]), 0, 0
    while time.monotonic() < end:
        try:
            ray.get(keeper.bump.remote(), timeout=5)
            ok += 1
        except Exception:
            failed += 1
        time.sleep(0.2)
    print(json.dumps({"ok": ok, "failed": failed}))
else:
    n, node = ray.get(keeper.bump.remote(), timeout=60)
    print(json.dumps({"n": n, "node": node}))
"""


def start_head(host, env=None):
    proc = host.boot("head", "--no-serve", "--node-ip-address", HEAD_IP, "--num-cpus", "1", env=env)
    proc.wait_line("head ready", timeout=180)
    return proc


def bump(head_host, how="bump"):
    out = head_host.python(ACTOR, how, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def node_states(head_host):
    """{node id: (state, address)} as the head's dashboard reports them."""
    status, body = head_host.http("http://127.0.0.1:8265/nodes?view=summary")
    assert status == 200, body
    return {n["raylet"]["nodeId"]: (n["raylet"]["state"], n["raylet"]["nodeManagerAddress"])
            for n in json.loads(body)["data"]["summary"]}


def alive_at(head_host, ip):
    return [n for n, (state, addr) in node_states(head_host).items() if addr == ip and state == "ALIVE"]


class Link:
    """The switch's side of a host's veth: `down` is a cut the host cannot see (its own link stays up)."""

    def __init__(self, lan, host):
        self.switch = lan.switch
        self.port = f"p{lan.hosts.index(host) + 1}"  # Switch.plug names ports in plugging order

    def set(self, state):
        subprocess.run(["nsenter", "-t", str(self.switch.pid), "-n", "ip", "link", "set", self.port, state],
                       check=True)


@pytest.fixture(scope="module")
def cluster():
    """One head and one worker (defaults: it waits as long as Ray's threshold), shared by the cut cases."""
    need(*can_make_hosts())
    lan = Lan()
    try:
        h1, h2 = lan.host(1), lan.host(2)
        c = {"lan": lan, "head_host": h1, "worker_host": h2, "head": start_head(h1, env=RAY_CHECKS),
             "link": Link(lan, h2)}
        _join(c)
        yield c
        c["head"].signal(signal.SIGTERM)
    finally:
        lan.close()


def _join(c):
    """Start the worker and a named detached actor on its node (what a restart policy and the app would do)."""
    worker = c["worker_host"].boot("worker", "--address", HEAD, "--num-cpus", "1", env=RAY_CHECKS)
    worker.wait_line("worker ready", timeout=180)
    wait_for("the worker ALIVE at the head", lambda: alive_at(c["head_host"], WORKER_IP), timeout=60)
    first = bump(c["head_host"], "create")
    assert first["n"] == 1
    # The dashboard's node list lags the GCS: until it shows this node (not a dead one before it) ALIVE
    wait_for("the new node ALIVE at the head", lambda: alive_at(c["head_host"], WORKER_IP) == [first["node"]], 60)
    c.update(worker=worker, node=first["node"], raylet=c["worker_host"].find("raylet")[0].pid,
             pid=worker.inner().pid, n=1)


def _assert_same_worker(c, at_least=False):
    """The same process and raylet, its node ALIVE at the head, the actor's state intact (at_least: calls that
    timed out may have run as well)."""
    assert c["worker"].popen.poll() is None, c["worker"].output_tail()
    assert c["worker"].inner().pid == c["pid"]
    assert [p.pid for p in c["worker_host"].find("raylet")] == [c["raylet"]], _raylet_said(c)
    assert wait_for("the worker's node ALIVE", lambda: alive_at(c["head_host"], WORKER_IP), timeout=60) \
        == [c["node"]]
    got = bump(c["head_host"])
    assert got["node"] == c["node"] and (got["n"] > c["n"] if at_least else got["n"] == c["n"] + 1), got
    c["n"] = got["n"]


def gcs_log(head_host, pattern):
    out = head_host.run(["grep", "-h", pattern, "/tmp/ray/session_latest/logs/gcs_server.out"])
    return out.stdout.splitlines()


def failed_checks(head_host):
    """The head's GCS health checks of nodes that failed so far: `Health check failed for node ID, remaining
    checks N` (gcs_health_check_manager.cc) in its gcs_server.out."""
    return gcs_log(head_host, "Health check failed for node")


def checks_pass_again(head_host, quiet=20, timeout=180):
    """Wait until the head's health checks of the node pass again (or it is declared dead): Ray resets its
    count of failures only on a check that passes, so a second cut before that adds to the first (measured: a
    10, 30 and 50 s cut 5 s apart had the node declared dead in the third). A check ends at most timeout +
    period (13 s) after the last one began; no failure for `quiet` s means one passed. Returns the count."""
    end, seen, quiet_until = time.monotonic() + timeout, len(failed_checks(head_host)), time.monotonic() + quiet
    while time.monotonic() < quiet_until:
        assert time.monotonic() < end, failed_checks(head_host)[-5:]
        time.sleep(1)
        now = len(failed_checks(head_host))
        if now != seen:
            seen, quiet_until = now, time.monotonic() + quiet
    return seen


def _raylet_said(c):
    """What the worker and its raylet said last, for a failure's message."""
    out = c["worker_host"].run(["sh", "-c", "tail -n 15 /tmp/ray/session_latest/logs/raylet.out; "
                                            "tail -n 5 /tmp/ray/session_latest/logs/raylet.err"])
    return c["worker"].output_tail(30) + "\n--- raylet:\n" + out.stdout


def _follows_ray(c, before, failed_before, what, at_least=False):
    """After a heal: whatever Ray's head decided, the worker did the same. Kept ALIVE: the same worker, its
    actor intact. Declared dead (Ray counts failed checks on after the heal until TCP retransmits: measured,
    a 30 s cut counted 4 of 5, a 50 s cut 5): the worker left in one line, nothing left, and is started again
    as a restart policy would. Returns whether the head declared the node dead."""
    worker = c["worker"]
    counted = checks_pass_again(c["head_host"], QUIET_S) - failed_before
    dead = bool(gcs_log(c["head_host"], f"Node {c['node']} is dead because the health check failed"))
    print(f"{what}: the head counted {counted} failed health check(s) of 5 and "
          f"{'DECLARED THE NODE DEAD' if dead else 'kept the node'}; the worker said: "
          + " | ".join(l for l in worker.output[len(before):].splitlines() if "[head" in l or "error:" in l))
    if dead:
        assert worker.wait(timeout=60) == 1, worker.output_tail()
        errors = [l for l in worker.output.splitlines() if l.startswith("seedcore-boot: error:")]
        assert len(errors) == 1 and "does not hold this node ALIVE" in errors[0], worker.output_tail()
        assert "Traceback" not in worker.output and c["worker_host"].processes() == []
        _join(c)
    else:
        _assert_same_worker(c, at_least)
    return dead


def _cut(c, seconds):
    """A cut of `seconds` at Ray's defaults (scaled)."""
    worker = c["worker"]
    before, failed_before = worker.output, checks_pass_again(c["head_host"], QUIET_S)
    c["link"].set("down")
    try:
        time.sleep(scaled(seconds))
        assert worker.popen.poll() is None, worker.output_tail()  # never before Ray's threshold
    finally:
        c["link"].set("up")
    wait_for("the worker's heal line", lambda: "reachable again after" in worker.output[len(before):], 60)
    said = worker.output[len(before):]
    # said once when it begins (the watch sees the silence within its first checks) and once when it heals
    assert said.count("unreachable since") == 1 and f"waiting up to {THRESHOLD_S:g} s as Ray would" in said, said
    assert said.count("reachable again after") == 1, said
    return _follows_ray(c, before, failed_before, f"{scaled(seconds):g} s cut (of a {THRESHOLD_S:g} s threshold)")


@pytest.mark.parametrize("seconds", [10, 30])
def test_a_cut_costs_nothing_that_ray_keeps(cluster, seconds):
    dead = _cut(cluster, seconds)
    if seconds == 10:  # at most 2 failed checks (scaled: 5 s): Ray keeps the node, and so does the worker
        assert not dead


def test_a_flapping_link_under_load_costs_nothing(cluster):
    c, worker = cluster, cluster["worker"]
    nodes = {n: s for n, s in node_states(c["head_host"]).items() if s[0] == "ALIVE"}
    before, failed_before = worker.output, checks_pass_again(c["head_host"], QUIET_S)
    load = c["head_host"].spawn([sys.executable, "-c", ACTOR, "load", str(scaled(70))])
    end = time.monotonic() + scaled(60)
    while time.monotonic() < end:  # down 3 s, up 3 s, for a minute (scaled)
        c["link"].set("down")
        time.sleep(scaled(3))
        c["link"].set("up")
        time.sleep(scaled(3))
    assert load.wait(180) == 0, load.output_tail()
    counts = json.loads(load.output.strip().splitlines()[-1])
    print(f"flapping: {counts['ok']} calls answered, {counts['failed']} failed")
    assert counts["ok"] > 0
    c["n"] += counts["ok"]  # every answered call counted; one that timed out may have run as well
    assert not _follows_ray(c, before, failed_before, "flapping", at_least=True), "Ray's head declared it dead"
    assert {n: s for n, s in node_states(c["head_host"]).items() if s[0] == "ALIVE"} == nodes


def test_a_50_s_cut_ends_the_worker_only_if_ray_ends_its_node(cluster):
    _cut(cluster, 50)


def test_a_cut_longer_than_rays_threshold_ends_the_worker_in_one_line(cluster):
    c, worker = cluster, cluster["worker"]
    checks_pass_again(c["head_host"], QUIET_S)
    c["link"].set("down")
    t = time.monotonic()
    try:
        rc = worker.wait(timeout=THRESHOLD_S + 60)  # Ray's threshold, and a minute only a hang needs
        print(f"the worker left {time.monotonic() - t:.1f} s into the cut")
    finally:
        c["link"].set("up")
    assert rc == 1, worker.output_tail()
    errors = [l for l in worker.output.splitlines() if l.startswith("seedcore-boot: error:")]
    assert len(errors) == 1 and f"the head at {HEAD} is gone since" in errors[0], worker.output_tail()
    assert f"waited {THRESHOLD_S:g} s as Ray would (the head declares a node dead after" in errors[0], errors[0]
    assert "Traceback" not in worker.output
    assert c["worker_host"].processes() == []


def _head_replaced(lan, h1, head, env=None):
    """Kill the head's whole host, bring it up again at the same address; (new host, new head).

    A machine that comes up announces itself on its LAN (ARP, DHCP, any first packet), and the switch and
    its neighbours learn where its address is now. An emulated host says nothing until spoken to, so it
    sends the worker one datagram (its ARP request is the announcement). Without that the worker's frames
    went to the old machine until its ARP entry expired (measured: the new head unseen by the worker's watch
    for 23-45 s after the new head's marker); with it the worker left before that marker."""
    h1.close()
    head.kill()
    h1b = lan.host(1)
    said = h1b.python("import socket, sys; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'', "
                      "(sys.argv[1], 9))", WORKER_IP)
    assert said.returncode == 0, said.stderr
    return h1b, start_head(h1b, env=env)


def test_a_new_head_at_the_same_address_ends_the_worker_at_once(lan):
    net = lan.__self__  # conftest's lan fixture is Lan.host; the head's host is replaced on its Lan
    h1, h2 = net.host(1), net.host(2)
    head = start_head(h1)
    # A patience far longer than the test: only the new cluster can end the worker.
    worker = h2.boot("worker", "--address", HEAD, "--num-cpus", "1", "--head-lost-timeout", "600")
    worker.wait_line("worker ready", timeout=180)
    _, new_head = _head_replaced(net, h1, head)
    rc = worker.wait(timeout=120)
    assert rc == 1, worker.output_tail()
    errors = [i for i, l in enumerate(worker.lines) if l.startswith("seedcore-boot: error:")]
    assert len(errors) == 1 and "another cluster now" in worker.lines[errors[0]], worker.output_tail()
    left = worker.stamps[errors[0]]
    # The order of events: the new head's Ray was started, then the worker left (not its 600 s wait).
    started = next(t for t, l in zip(new_head.stamps, new_head.lines) if "started `ray start" in l)
    up = next(t for t, l in zip(new_head.stamps, new_head.lines) if "ray runtime started" in l)
    assert left > started
    print(f"the worker left {left - up:+.1f} s after the new head's \"ray runtime started\"; it said: "
          + " | ".join(f"{t - up:+.1f} s {l}" for t, l in zip(worker.stamps, worker.lines)
                       if "[head" in l or "error:" in l or "ray |" in l and t > up - 5))
    errors = [worker.lines[errors[0]]]
    assert "joins the new cluster" in errors[0] and "Traceback" not in worker.output
    assert h2.processes() == []
    new_head.signal(signal.SIGTERM)
    assert new_head.wait(60) == 0


def test_a_head_back_on_redis_keeps_the_worker_and_its_actor(lan):
    net = lan.__self__
    need(shutil.which("redis-server"), "needs redis-server (Debian's redis-server)")
    h1, h2, h3 = net.host(1), net.host(2), net.host(3)
    redis = h3.spawn(["redis-server", "--port", "6390", "--bind", "10.200.0.3", "--save", "", "--appendonly", "no",
                      "--protected-mode", "no"])
    redis.wait_line("Ready to accept connections", timeout=30)
    ft = {"RAY_REDIS_ADDRESS": "10.200.0.3:6390", "RAY_external_storage_namespace": "partition"}
    head = start_head(h1, env=ft)
    # Above the head's restart, as docs/fault-tolerance.md asks: a slow restart must not end the worker.
    worker = h2.boot("worker", "--address", HEAD, "--num-cpus", "1", "--head-lost-timeout", "120")
    worker.wait_line("worker ready", timeout=180)
    wait_for("the worker ALIVE at the head", lambda: alive_at(h1, WORKER_IP), timeout=60)
    first = bump(h1, "create")
    pid, raylet = worker.inner().pid, h2.find("raylet")[0].pid
    h1b, new_head = _head_replaced(net, h1, head, env=ft)
    assert wait_for("the worker's node ALIVE at the new head", lambda: alive_at(h1b, WORKER_IP), timeout=120) \
        == [first["node"]]
    assert bump(h1b) == {"n": 2, "node": first["node"]}  # the actor answers through the new head, state intact
    assert worker.popen.poll() is None and worker.inner().pid == pid, worker.output_tail()
    assert [p.pid for p in h2.find("raylet")] == [raylet]
    assert "another cluster" not in worker.output
    worker.signal(signal.SIGTERM)
    assert worker.wait(90) == 0
    assert h2.processes() == []
    new_head.signal(signal.SIGTERM)
    assert new_head.wait(60) == 0
