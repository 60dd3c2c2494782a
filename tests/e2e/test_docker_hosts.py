"""docker/ray-head-host.yml and ray-workers-host.yml across three machines, each with its own Docker engine
(tests/dockerhosts.py): A runs the head's stack, B and C one worker each, on host networking, run the way a
user runs them (compose v1 against each machine's engine, the shipped files, settings by environment).

One topology serves the whole module, in order: built, loaded and started once (tests/sharedstacks.py: and
test_user_paths_docker_hosts.py's checks, run on it first). The head offers no CPU
(SEEDCORE_NUM_CPUS=0) and the app's replica needs one, so it runs on a worker's machine: B's, which joins
first. Every request is made from inside the machine it is meant for.
"""

import hashlib
import json
import os
import re
import subprocess
import sys
import time

import pytest
import yaml

from seedcore_boot.serve import config as serve_config
from tests.dockerhosts import DOCKER_DIR, REPO, DockerLan, Load, engine_or_skip, load_images, wait_for
from tests.nshost import can_make_hosts
from tests.sharedstacks import shared
from tests.skips import need

pytestmark = pytest.mark.e2e

NODE = "seedcore-ray-node"  # the Ray container's name on every machine
NODE_IMAGE = "seedcore-boot/ray:2.20.0"
PROMETHEUS = "prom/prometheus:v2.42.0"
HEAD_FILE, WORKERS_FILE = ("-f", "ray-head-host.yml"), ("-f", "ray-workers-host.yml")
DOCS = os.path.join(REPO, "docs", "docker-hosts.md")
# A machine that disappears: Ray 2.20's GCS declares a node dead after 5 failed health checks (a 10 s timeout
# each, 3 s apart, ray_config_def.h); then Serve replaces the replica. Bounds with room for a loaded machine.
NODE_DEAD_WITHIN, APP_BACK_WITHIN = 120, 90


def build_image():
    """The seedcore-boot image from this checkout, built on the main engine under a tag of this checkout's
    own (the shipped tag is rebuilt by every checkout on the machine); each machine gets it as NODE_IMAGE."""
    tag = f"seedcore-dockerhosts/ray:{hashlib.sha1(REPO.encode()).hexdigest()[:10]}"
    out = subprocess.run(["docker", "build", "-q", "-t", tag, "-f", os.path.join(DOCKER_DIR, "Dockerfile"), REPO],
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout + out.stderr
    return tag


def health(machine):
    return machine.docker("inspect", "--format", "{{.State.Health.Status}}", NODE, check=False).stdout.strip()


def logs(machine, container=NODE):
    out = machine.docker("logs", container, check=False)
    return out.stdout + out.stderr


def nodes(head):
    """{ip: state} of the cluster's nodes as the head's state API reports them (a node's latest state)."""
    status, body = head.http("http://127.0.0.1:8265/api/v0/nodes?limit=100")
    assert status == 200, body
    found = {}
    for n in json.loads(body)["data"]["result"]["result"]:
        if found.get(n["node_ip"]) != "ALIVE":  # a machine's earlier node is DEAD; its current one counts
            found[n["node_ip"]] = n["state"]
    return found


def replicas(head):
    """(app status, [(replica state, node ip)]) of the sample app `ml`."""
    status, body = head.http("http://127.0.0.1:8265/api/serve/applications/")
    assert status == 200, body
    app = json.loads(body)["applications"].get("ml")
    if not app:
        return "MISSING", []
    return app["status"], [(r["state"], r["node_ip"]) for r in app["deployments"]["Classifier"]["replicas"]]


def running_on(head, ip):
    return replicas(head) == ("RUNNING", [("RUNNING", ip)])


def worker_env(head):
    return {"SEEDCORE_HEAD_ADDRESS": f"{head.address}:6379"}


def refused(machine, *argv, env=()):
    """A Ray node started by hand on `machine`'s host network: (exit code, output)."""
    flags = [x for k, v in env for x in ("-e", f"{k}={v}")]
    out = machine.docker("run", "--rm", "--network", "host", "--shm-size", "256m", "-e", "RAY_USAGE_STATS_ENABLED=0",
                         *flags, NODE_IMAGE, *argv, check=False, timeout=180)
    return out.returncode, out.stdout + out.stderr


def one_error_line(text):
    errors = [l for l in text.splitlines() if l.startswith("seedcore-boot: error:")]
    assert len(errors) == 1 and "Traceback" not in text and "ray |" not in text, text  # Ray never started
    print(errors[0])  # docs/docker-hosts.md quotes these
    return errors[0]


@shared
def machines():
    engine_or_skip()
    need(*can_make_hosts())
    image = build_image()
    lan = DockerLan(f"mh{os.getpid() % 100000}")
    try:
        hosts = [lan.host(octet) for octet in (1, 2, 3)]
        load_images(hosts, [image, PROMETHEUS], tags=[(image, NODE_IMAGE)])
        yield hosts
    finally:
        lan.close()


@shared
def cluster(machines):
    """A: head (no CPU) and Prometheus; B: a worker holding the app's replica; C: a worker, joined after."""
    a, b, c = machines
    a.compose(*HEAD_FILE, "up", "-d", env={"SEEDCORE_NODE_IP": a.address, "SEEDCORE_NUM_CPUS": "0"})
    b.compose(*WORKERS_FILE, "up", "-d", env=worker_env(a))
    wait_for("the head healthy", lambda: health(a) == "healthy", 240)
    wait_for("B's worker healthy", lambda: health(b) == "healthy", 180)
    # The sample app, its replica needing one CPU: only B has one yet.
    with open(serve_config.DEFAULT_CONFIG, encoding="utf-8") as fh:
        config = yaml.safe_load(fh)
    config["applications"][0]["deployments"][0]["ray_actor_options"] = {"num_cpus": 1}
    config["http_options"] = {"host": "127.0.0.1", "port": 8000}  # as the head deployed it (ray-head-host.yml)
    status, body = a.http("http://127.0.0.1:8265/api/serve/applications/", "PUT", config, timeout=30)
    assert status == 200, body
    wait_for("the replica on B", lambda: running_on(a, b.address), 120)
    c.compose(*WORKERS_FILE, "up", "-d", env=worker_env(a))
    wait_for("C's worker healthy", lambda: health(c) == "healthy", 180)
    wait_for("three nodes alive", lambda: nodes(a) == {m.address: "ALIVE" for m in machines}, 60)
    return a, b, c


def test_every_node_is_alive_at_its_machines_address(cluster):
    a, b, c = cluster
    assert nodes(a) == {a.address: "ALIVE", b.address: "ALIVE", c.address: "ALIVE"}
    # "node address IP on NIC (why)": the interface that holds it is named (docs/running.md)
    assert re.search(rf"node address {re.escape(a.address)} on \S+ \(node_ip_address\)", logs(a)), logs(a)[-3000:]
    for worker in (b, c):  # the workers' addresses were detected, and said so
        said = rf"node address {re.escape(worker.address)} on \S+ \(detected as Ray does: the route towards " \
               rf"{re.escape(a.address)}\)"
        assert re.search(said, logs(worker)), logs(worker)[-3000:]
    for machine in cluster:
        text = logs(machine)
        for bad in ("Traceback", "ERROR", "Address already in use", "instead of /dev/shm"):
            assert bad not in text, f"{bad!r} on {machine.name}:\n{text[-3000:]}"


def test_a_replica_on_b_answers_through_the_heads_proxy_on_a(cluster):
    a, b, _ = cluster
    assert running_on(a, b.address)
    status, body = a.http("http://127.0.0.1:8000/health")
    assert status == 200 and json.loads(body)["replica"]["deployment"] == "Classifier", body
    status, body = a.http("http://127.0.0.1:8000/predict", "POST", {"features": [[2.0, 0.0]]})
    assert status == 200 and json.loads(body)["predictions"][0]["label"] == "positive", body


def test_from_b_the_heads_gcs_answers_and_its_dashboard_serve_and_prometheus_do_not(cluster):
    """From B: A's GCS answers; its dashboard, Serve proxy and Prometheus listen on A's loopback only."""
    a, b, _ = cluster
    probe = "import socket, sys; s = socket.socket(); s.settimeout(3); print(s.connect_ex((sys.argv[1], int(sys.argv[2]))))"
    reach = {port: b.run_in([sys.executable, "-c", probe, a.address, str(port)]).stdout.strip()
             for port in (6379, 8265, 8000, 9090)}
    assert reach[6379] == "0", reach
    assert all(reach[port] not in ("0", "") for port in (8265, 8000, 9090)), reach


def test_prometheus_on_a_scrapes_every_machines_node(cluster):
    a, b, c = cluster
    expected = {f"{a.address}:8080", f"{a.address}:44227", f"{a.address}:44217", f"{b.address}:8080",
                f"{c.address}:8080"}

    def all_up():
        status, body = a.http("http://127.0.0.1:9090/api/v1/targets")
        if status != 200:
            return None
        targets = {t["labels"]["instance"]: t["health"] for t in json.loads(body)["data"]["activeTargets"]}
        return targets if set(targets) == expected and set(targets.values()) == {"up"} else None

    wait_for(f"Prometheus on A reporting {sorted(expected)} up", all_up, 90, step=2)


def test_the_documented_firewall_lists_are_what_the_running_nodes_print(cluster):
    """The doc's command on A's head and B's worker: what they print is the doc's lists, word for word."""
    a, b, _ = cluster
    with open(DOCS, encoding="utf-8") as fh:
        docs = fh.read()
    for machine, role in ((a, "head"), (b, "worker")):
        out = machine.docker("exec", NODE, "seedcore-boot", "check-ports", "--role", role, "--firewall").stdout
        assert f"```text\n{out.strip()}\n```" in docs, out


def test_a_head_on_host_networking_without_a_reachable_address_is_refused(cluster):
    """C has no route out: Ray's detection falls back to the host name's address, loopback here."""
    _, _, c = cluster
    code, text = refused(c, "head")
    line = one_error_line(text)
    assert code == 1 and "this node would advertise" in line and "detected as Ray does: no route towards 8.8.8.8" \
        in line and "SEEDCORE_NODE_IP" in line, text
    assert health(c) == "healthy"  # C's worker never noticed


def test_docker_stop_of_bs_worker_under_load_fails_no_request(cluster):
    a, b, c = cluster
    load = Load(a, "http://127.0.0.1:8000/health")
    time.sleep(2)  # requests flowing before the stop
    t = time.monotonic()
    b.docker("stop", NODE, timeout=90)
    took = time.monotonic() - t
    wait_for("the replica on C", lambda: running_on(a, c.address), 60)
    time.sleep(1)
    result = load.stop()
    assert result["failed"] == [] and result["ok"] > 20, result
    assert b.docker("inspect", "--format", "{{.State.ExitCode}}", NODE).stdout.strip() == "0"
    text = logs(b)
    assert "drained in" in text and "worker stopped" in text, text[-3000:]
    print(f"docker stop of B's worker: {took:.1f} s, {result['ok']} requests, none failed")


def test_a_worker_on_a_docker_bridge_address_is_refused(cluster):
    """B's own node is stopped: a worker there advertising docker0's address never starts Ray."""
    a, b, _ = cluster
    docker0 = re.search(r"inet (\S+)/", b.run_in(["ip", "-4", "-o", "addr", "show", "docker0"]).stdout).group(1)
    code, text = refused(b, "worker", env=[("SEEDCORE_HEAD_ADDRESS", f"{a.address}:6379"),
                                           ("SEEDCORE_BOOT_NODE_IP_ADDRESS", docker0)])
    line = one_error_line(text)
    assert code == 1 and f"would advertise {docker0} (node_ip_address), the address of Docker's bridge docker0" in line


def test_a_second_ray_node_on_one_machine_is_refused_before_it_starts(cluster):
    """Docker refuses a second container named seedcore-ray-node at `up`; a second node started any other way
    is refused by seedcore-boot before Ray starts. The first node is whole throughout."""
    a, b, _ = cluster
    out = b.compose(*WORKERS_FILE, "up", "-d", "--scale", "ray-worker-host=2", env=worker_env(a), check=False)
    assert out.returncode != 0 and f'The container name "/{NODE}" is already in use' in out.stdout + out.stderr
    print(out.stdout + out.stderr)
    assert len(b.containers()) == 1
    wait_for("B's worker healthy again", lambda: health(b) == "healthy", 180)
    wait_for("B's node alive again", lambda: nodes(a).get(b.address) == "ALIVE", 60)
    out = a.compose(*WORKERS_FILE, "up", "-d", env=worker_env(a), check=False)  # a worker on the head's machine
    assert out.returncode != 0 and f'The container name "/{NODE}" is already in use' in out.stdout + out.stderr

    code, text = refused(b, "worker", env=[("SEEDCORE_HEAD_ADDRESS", f"{a.address}:6379")])
    line = one_error_line(text)
    assert code == 2 and "belongs to another seedcore-boot node in this network namespace (on Docker's host " \
        "networking: another Ray node on this machine)" in line, text
    assert health(b) == "healthy" and nodes(a).get(b.address) == "ALIVE"
    assert b.docker("inspect", "--format", "{{.RestartCount}}", NODE).stdout.strip() == "0"


def test_a_machine_that_disappears_is_declared_dead_and_serve_recovers(cluster):
    """C, holding the replica since B's stop, vanishes (off the LAN, every process of it killed): the head
    declares its node dead and Serve runs the app on B again."""
    a, b, c = cluster
    assert running_on(a, c.address)
    t = time.monotonic()
    c.vanish()
    wait_for("C's node dead", lambda: nodes(a).get(c.address) == "DEAD", NODE_DEAD_WITHIN)
    dead = time.monotonic() - t
    wait_for("the app running on B", lambda: running_on(a, b.address), APP_BACK_WITHIN)
    back = time.monotonic() - t
    status, _ = a.http("http://127.0.0.1:8000/health")
    assert status == 200
    assert nodes(a) == {a.address: "ALIVE", b.address: "ALIVE", c.address: "DEAD"}
    print(f"C vanished: its node DEAD after {dead:.1f} s, the app RUNNING on B after {back:.1f} s")


def test_stop_all_on_each_machine_stops_that_machines_part(cluster):
    a, b, _ = cluster
    for machine in (a, b):  # the head's first: its workers must not be left out for the check below
        out = subprocess.run(["bash", os.path.join(DOCKER_DIR, "stop-all.sh")], cwd="/", capture_output=True,
                             text=True, timeout=300, env=dict(os.environ, DOCKER_HOST=machine.sock))
        assert out.returncode == 0, out.stdout + out.stderr
        assert machine.containers() == [], machine.docker("ps", "-a").stdout
        if machine is a:
            assert len(b.containers()) == 1  # A's stop-all stopped nothing of B's
