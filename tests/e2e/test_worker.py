"""`seedcore-boot worker` across emulated hosts: each host is its own network/PID/mount namespace, joined
to the others by veth through a switch namespace. All traffic stays inside those namespaces."""

import json
import re
import signal
import sys
import time

import pytest

from seedcore_boot.node.flow import TEST_HOLD

pytestmark = pytest.mark.e2e
BOOT = [sys.executable, "-m", "seedcore_boot"]
HEAD_IP = "10.200.0.1"
HEAD = f"{HEAD_IP}:6379"


def start_head(host):
    proc = host.boot("head", "--no-serve", "--node-ip-address", HEAD_IP, "--num-cpus", "1")
    proc.wait_line("head ready", timeout=180)
    return proc


def start_worker(host, *args):
    return host.boot("worker", "--address", HEAD, "--num-cpus", "1", *args)


def wait_for_states(head_host, expected, timeout=60):
    """{ip: state} as the head's dashboard reports it, polled until it equals `expected` or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        states = {ip: state for state, ip in alive_nodes(head_host).values()}
        if states == expected or time.monotonic() > deadline:
            return states
        time.sleep(1)


def alive_nodes(head_host):
    status, body = head_host.http("http://127.0.0.1:8265/nodes?view=summary")
    assert status == 200, body
    # The raylet part comes from the GCS; the top-level "ip" only once the node's agent has reported.
    return {n["raylet"]["nodeId"]: (n["raylet"]["state"], n["raylet"]["nodeManagerAddress"])
            for n in json.loads(body)["data"]["summary"]}


TASK_ON_EACH_NODE = r"""
import json, ray, socket
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
ray.init(address="10.200.0.1:6379", logging_level="ERROR", log_to_driver=False)
@ray.remote(num_cpus=0)
def where():
    return ray.get_runtime_context().get_node_id(), ray.util.get_node_ip_address()
nodes = [n["NodeID"] for n in ray.nodes() if n["Alive"]]
got = ray.get([where.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n, soft=False)).remote()
               for n in nodes])
print(json.dumps({"nodes": nodes, "ran": got}))
"""


def test_cluster_of_three_hosts(lan):
    h1, h2, h3 = lan(1), lan(2), lan(3)
    head = start_head(h1)
    # h2's worker loses its head below: 10 s, not the 65 s a head it cannot reach gets by default (test_partition.py)
    workers = [start_worker(h2, "--head-lost-timeout", "10"), start_worker(h3)]
    for w in workers:
        w.wait_line("worker ready", timeout=180)

    all_alive = {"10.200.0.1": "ALIVE", "10.200.0.2": "ALIVE", "10.200.0.3": "ALIVE"}
    assert wait_for_states(h1, all_alive) == all_alive

    out = h1.python(TASK_ON_EACH_NODE, timeout=180)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert sorted(ip for _, ip in result["ran"]) == ["10.200.0.1", "10.200.0.2", "10.200.0.3"]
    assert [n for n, _ in result["ran"]] == result["nodes"]

    status = h2.run([*BOOT, "status", "--json"])
    assert status.returncode == 0, status.stdout
    assert json.loads(status.stdout)["role"] == "worker"

    # SIGTERM to one worker: it leaves cleanly, the head stays healthy and reports the node dead.
    workers[1].signal(signal.SIGTERM)
    assert workers[1].wait(30) == 0
    assert h3.processes() == []
    one_dead = {"10.200.0.1": "ALIVE", "10.200.0.2": "ALIVE", "10.200.0.3": "DEAD"}
    assert wait_for_states(h1, one_dead) == one_dead
    assert h1.run([*BOOT, "status"]).returncode == 0

    # The head's whole host dies: the remaining worker notices, exits 1, and leaves nothing behind.
    t = time.monotonic()
    h1.close()
    rc = workers[0].wait(timeout=30)
    print(f"worker exited {rc} {time.monotonic() - t:.1f} s after its head's host died")
    assert rc == 1
    assert h2.processes() == []
    head.kill()


def test_worker_started_before_the_head_waits_and_joins(lan):
    h1, h2 = lan(1), lan(2)
    worker = start_worker(h2)
    worker.wait_line("waiting for the head at 10.200.0.1:6379", timeout=60)
    time.sleep(10)
    assert worker.popen.poll() is None
    assert "still waiting for 10.200.0.1:6379" in worker.output  # progress, with the last error
    assert "ray |" not in worker.output  # Ray is not started before the head is healthy
    # Ray's CLI is already imported and held at the gate; no Ray component runs yet.
    assert any("seedcore_boot.ray.raycli" in p.cmdline() for p in h2.processes())
    assert h2.find("raylet") == [] and h2.find("gcs_server") == []
    head = start_head(h1)
    worker.wait_line("worker ready", timeout=180)
    both = {"10.200.0.1": "ALIVE", "10.200.0.2": "ALIVE"}
    assert wait_for_states(h1, both) == both
    worker.signal(signal.SIGTERM)
    assert worker.wait(30) == 0
    head.signal(signal.SIGTERM)
    assert head.wait(30) == 0


def test_no_head_gives_up_on_its_own_deadline(lan):
    """It keeps asking until its deadline (its progress lines, every 5 s by its own clock, come before the
    error: it did not give up at the first refusal), then one line naming the address and the deadline."""
    h2 = lan(2)
    t = time.monotonic()
    worker = start_worker(h2, "--wait-timeout", "12")
    rc = worker.wait(120)
    print(f"gave up after {time.monotonic() - t:.1f} s")
    assert rc == 1
    out = worker.output
    error = out.split("seedcore-boot: error:")[-1]
    assert f"the head at {HEAD} was not reachable within 12 s" in error, out
    assert "(up to 12 s)" in out and out.index(f"still waiting for {HEAD}") < out.index("seedcore-boot: error:"), out
    assert "ray |" not in out
    assert h2.processes() == []  # the gated Ray CLI went with us


def test_wait_timeout_0_waits_without_a_limit(lan):
    """`--wait-timeout 0` waits forever (docs/running.md): observed past its own 20 s of asking (four times a
    deadline that 0 might wrongly become), still waiting, then stopped. tests/unit/node/test_headwait.py follows
    the same loop past the 300 s default on a clock the test drives."""
    h2 = lan(2)
    worker = start_worker(h2, "--wait-timeout", "0")
    worker.wait_line(f"waiting for the head at {HEAD} (no time limit)", timeout=60)
    line = worker.wait_line(lambda l: re.search(rf"still waiting for {HEAD} \((\d+) s", l) and
                            int(re.search(r"\((\d+) s", l).group(1)) >= 20, timeout=120)
    print(line)
    assert worker.popen.poll() is None and "seedcore-boot: error:" not in worker.output, worker.output_tail()
    worker.signal(signal.SIGTERM)
    assert worker.wait(60) == 0, worker.output_tail()
    assert "seedcore-boot: error:" not in worker.output and h2.processes() == []


HEAD_LOST = ("--head-lost-timeout", "10")  # an explicit wait: the default is Ray's threshold (65 s)


def _assert_head_lost_exit(worker, worker_host, killed_at):
    rc = worker.wait(timeout=120)  # only a hang reaches this (head_lost_timeout is 10 s); the time is printed
    took = time.monotonic() - killed_at
    print(f"worker exited {rc} {took:.1f} s after its head's host died")
    assert rc == 1, worker.output_tail()
    error = worker.output.split("seedcore-boot: error:")[-1]
    assert f"the head at {HEAD} is gone since" in error, worker.output_tail()
    assert "Traceback" not in worker.output
    assert worker_host.processes() == []


@pytest.mark.parametrize("run", [1, 2, 3])  # a race would show in some runs, not in one
def test_head_lost_while_the_worker_checks_its_health(lan, run):
    h1, h2 = lan(1), lan(2)
    head = start_head(h1)
    worker = h2.boot("worker", "--address", HEAD, "--num-cpus", "1", *HEAD_LOST, env={TEST_HOLD: "health:60"})
    worker.wait_line("holding 60 s", timeout=120)  # right after "Ray runtime started.", before the checks
    t = time.monotonic()
    h1.close()
    _assert_head_lost_exit(worker, h2, t)
    assert "worker ready" not in worker.output
    head.kill()


@pytest.mark.parametrize("run", [1, 2, 3])
def test_head_lost_between_the_wait_and_ray_start(lan, run):
    h1, h2 = lan(1), lan(2)
    head = start_head(h1)
    worker = h2.boot("worker", "--address", HEAD, "--num-cpus", "1", *HEAD_LOST, env={TEST_HOLD: "start:60"})
    worker.wait_line("holding 60 s", timeout=120)  # the wait succeeded; `ray start` is not released yet
    t = time.monotonic()
    h1.close()
    _assert_head_lost_exit(worker, h2, t)
    assert "started `ray start" not in worker.output  # Ray's start never began
    head.kill()
