"""seedcore-boot under KubeRay: the shipped manifests (deploy/kuberay/) as KubeRay v1.1.1 and the kubelet would
run them, in the real Docker engine (tests/kuberay/: the generated `ray start` with its flags shuffled, the
injected environment, wait-gcs-ready, probes at their periods and thresholds, the head's Service name
resolving only while the head is Ready, deletion with SIGTERM then SIGKILL after the grace period).

Every request is made from inside a pod, to the Services' names or pods the test started.
"""

import copy
import json
import os
import random
import subprocess
import sys
import time

import pytest
import yaml

from tests import nshost
from tests.dockerhosts import engine_or_skip
from tests.k8s import kubectl
from tests.kuberay import kubelet, operator
from tests.kuberay.inpod import (DEPLOY, TASK_ON_NODE, applications, build_image, head_only, http, nodes,
                                 ray_lines, replica_ips)
from tests.sharedstacks import shared

pytestmark = pytest.mark.e2e
SEED = int(os.environ.get("SEEDCORE_KUBERAY_SEED") or random.randrange(10**6))  # the flag order: printed on failure


@pytest.fixture(scope="module")
def engine():
    engine_or_skip()
    build_image()


def cluster(tmp_path_factory, manifest, tag, subnet, edit=None):
    docs = operator.documents(os.path.join(DEPLOY, manifest))
    if edit:
        docs = edit(copy.deepcopy(docs))
    op = operator.Operator(docs, seed=SEED)
    return op, kubelet.Kubelet(op, tag, subnet, str(tmp_path_factory.mktemp(tag)))


def wait_for(what, test, timeout, step=1.0):
    return nshost.wait_for(f"{what} (flag-order seed {SEED})", test, timeout, step)


def said_at(pod, text):
    """When `pod` first printed a line with `text`: Docker's timestamp, fixed-width RFC 3339 (compares as text)."""
    out = subprocess.run(["docker", "logs", "--timestamps", pod.container], capture_output=True, text=True,
                         timeout=60)
    stamps = [line.split(" ", 1)[0] for line in (out.stdout + out.stderr).splitlines() if text in line]
    assert stamps, f"{pod.plan.name} never said {text!r}"
    return min(stamps)


# --- the RayCluster: head + two workers --------------------------------------------------------------
@shared  # one cluster for this class and test_user_paths_kuberay.py's, which runs first (tests/sharedstacks.py)
def rc(engine, tmp_path_factory):
    op, k = cluster(tmp_path_factory, "raycluster.yaml", "kr1", "10.211.1")
    try:
        head = k.run(op.head())
        workers = [k.run(op.worker()) for _ in range(2)]
        head.wait_ready(300)
        for w in workers:
            w.wait_ready(400)
        yield op, k, head, workers
    finally:
        k.close()


LOAD = r"""
import json, os, threading, time, urllib.request, sys
url, end = sys.argv[1], time.monotonic() + 150
ok, failed = [0], []
def client():
    while time.monotonic() < end and not os.path.exists("/tmp/stop-load"):
        try:
            with urllib.request.urlopen(url, timeout=30) as r:
                ok[0] += 1
        except Exception as exc:
            failed.append([round(time.time(), 2), repr(exc)[:200]])
            time.sleep(0.05)
threads = [threading.Thread(target=client) for _ in range(3)]
[t.start() for t in threads]
print("load running", flush=True)
[t.join() for t in threads]
print(json.dumps({"ok": ok[0], "failed": failed}), flush=True)
"""


DRAIN_LIKE_THE_AUTOSCALER = r"""
import sys, ray
ray.init(logging_level="ERROR", log_to_driver=False)  # RAY_ADDRESS is the head's, set by KubeRay
node = next(n["NodeID"] for n in ray.nodes() if n["Alive"] and n["NodeManagerAddress"] == sys.argv[1])
# StandardAutoscaler.drain_nodes_via_gcs (ray/autoscaler/_private/autoscaler.py), before terminate_nodes
print(ray._private.worker.global_worker.gcs_client.drain_nodes([bytes.fromhex(node)], timeout=5))
"""


class TestRayCluster:
    """Head and two workers from raycluster.yaml; the tests run in this order on the one cluster."""

    def test_head_and_workers_become_ready_and_kuberays_default_probes_pass(self, rc):
        op, k, head, workers = rc
        for pod in [head, *workers]:
            ready, live = operator.default_probes(pod.plan.role, rayservice=False)
            for probe in (ready, live):
                for _ in range(3):  # as the kubelet runs them: its 1 s timeout includes `docker exec` itself
                    out = pod.exec(probe.command, timeout=probe.timeout)
                    assert out.returncode == 0, (pod.plan.name, probe.command, out.stdout, out.stderr)
        # The workers' readiness needs their node (and its Serve proxy, none here) up: both Ready, no restart.
        assert all(p.ready and p.restarts == 0 for p in [head, *workers])


    def test_ray_advertises_what_kuberay_computed_from_the_limits(self, rc):
        op, k, head, workers = rc
        seen = wait_for("3 nodes ALIVE", lambda: (lambda n: n if len(n) == 3 else None)(nodes(head, op.fqdn)), 60)
        gib = 2**30
        assert seen[head.ip][1].get("CPU", 0) == 0  # rayStartParams num-cpus "0" wins over the CPU limit
        assert seen[head.ip][1]["memory"] == 4 * gib
        for w in workers:
            assert seen[w.ip][1]["CPU"] == 1 and seen[w.ip][1]["memory"] == 3 * gib
        # The generated command came with the flags in Go's map order, and it was what seedcore-boot ran.
        gen = head.plan.containers[0].env["KUBERAY_GEN_RAY_START_CMD"]
        assert "--num-cpus=0" in gen and "--memory=4294967296" in gen
        shown = json.loads(head.exec(["seedcore-boot", "config", "show", "--json"]).stdout)
        assert shown["num_cpus"] == {"value": 0, "source": "kuberay"} and shown["memory"]["source"] == "kuberay"


    def test_the_seeds_endpoints_answer_through_the_heads_service_name(self, rc):
        op, k, head, workers = rc
        client = workers[0]
        for port_path, expect in ((":8265/api/version", "2.20.0"), (":8080/metrics", "ray_"),
                                  (":44227/metrics", "ray_"), (":8000/health", '"status":"ok"')):
            status, text = wait_for(port_path, lambda: (lambda r: r if r[0] == 200 else None)(
                http(client, f"http://{op.fqdn}{port_path}")), 120)
            assert expect in text, (port_path, text[:300])
        status, text = http(client, f"http://{op.fqdn}:8000/predict", "POST", json.dumps({"features": [[1, 0]]}))
        assert status == 200 and "positive" in text, text


    def test_the_head_was_ready_before_its_serve_app_whose_replica_needs_a_worker(self, rc):
        """The deadlock KubeRay v1.1's ClusterIP Service invites: an app that waits for workers must not keep the
        head out of its Service, since workers can only join a Ready head."""
        op, k, head, workers = rc
        # The order of events, on the engine's clock: a worker (which joins only a Ready head) started its Ray
        # before the head said it was ready, Serve app RUNNING: the head was Ready while it waited for Serve.
        head_ready = said_at(head, "head ready in")
        worker_started = min(said_at(w, "started `ray start") for w in workers)
        assert worker_started < head_ready, (worker_started, head_ready)
        log = head.logs()
        assert log.index("head healthy in") < log.index("head ready in")
        ips = wait_for("the replica RUNNING", lambda: replica_ips(head, op.fqdn), 120)
        assert set(ips) <= {w.ip for w in workers}, ips  # the head advertises no CPU


    def test_a_worker_pod_with_a_replica_deleted_under_load_fails_no_request(self, rc):
        op, k, head, workers = rc
        ips = wait_for("the replica RUNNING", lambda: replica_ips(head, op.fqdn), 120)
        holder = next(w for w in workers if w.ip in ips)
        other = next(w for w in workers if w is not holder)
        load = subprocess.Popen(["docker", "exec", head.container, "python3", "-c", LOAD, f"http://{op.fqdn}:8000/health"],
                                stdout=subprocess.PIPE, text=True)
        try:
            assert "load running" in load.stdout.readline()
            time.sleep(3)
            t = time.monotonic()
            code = k.delete(holder)
            took = time.monotonic() - t
        finally:
            head.exec(["touch", "/tmp/stop-load"])
            result = json.loads(load.communicate(timeout=120)[0].strip().splitlines()[-1])
        print(f"the pod's deletion took {took:.1f} s (grace {holder.plan.grace} s)")
        # 137 had the kubelet's SIGKILL ended the pod after its grace period.
        assert code == 0 and "killed after the grace period" not in holder.logs(), (code, holder.logs()[-3000:])
        assert "drained in" in holder.logs(), holder.logs()[-3000:]
        assert result["failed"] == [] and result["ok"] > 20, result
        assert replica_ips(head, op.fqdn) == [other.ip]
        workers.remove(holder)
        # KubeRay keeps `replicas: 2`: it creates a new pod for the one deleted.
        workers.append(k.run(op.worker()))
        workers[-1].wait_ready(400)


    def test_an_idle_worker_drained_by_the_autoscaler_exits_0_without_a_restart(self, rc):
        op, k, head, workers = rc
        idle = workers[-1]  # the replacement: no replica (the other worker holds it)
        assert idle.ip not in replica_ips(head, op.fqdn)
        out = head.exec(["python3", "-c", DRAIN_LIKE_THE_AUTOSCALER, idle.ip], timeout=120)
        assert out.returncode == 0, out.stderr[-2000:]
        assert idle.exited.wait(60), idle.logs()[-3000:]
        code = k.delete(idle)  # then KubeRay deletes the pod (scaleStrategy.workersToDelete)
        log = idle.logs()
        assert code == 0 and idle.restarts == 0, (code, idle.restarts, log[-3000:])
        assert "this node was drained by the cluster" in log and "DrainNode" in log
        assert "seedcore-boot: error" not in log


# --- settings from rayStartParams, and what is refused ----------------------------------------------
def test_custom_rayStartParams_in_any_order_are_honoured(engine, tmp_path_factory):
    params = {"num-cpus": "2", "resources": '"{\\"accel\\": 3}"', "object-store-memory": "200000000",
              "node-manager-port": "7380", "metrics-export-port": "8081"}
    op, k = cluster(tmp_path_factory, "raycluster.yaml", "kr2", "10.211.2", head_only(params))
    try:
        head = k.run(op.head())
        head.wait_ready(300)
        total = nodes(head, "127.0.0.1")[head.ip][1]
        assert total["CPU"] == 2 and total["accel"] == 3 and total["object_store_memory"] == 200000000
        status, _ = http(head, "http://127.0.0.1:8081/metrics")
        assert status == 200
        assert head.exec(["seedcore-boot", "status", "--live"]).returncode == 0  # the node file has port 7380
    finally:
        k.close()


def test_a_value_set_both_in_rayStartParams_and_our_settings_is_one_line_and_no_ray(engine, tmp_path_factory):
    op, k = cluster(tmp_path_factory, "raycluster.yaml", "kr3", "10.211.3",
                    head_only({"num-cpus": "1"}, env=[("SEEDCORE_BOOT_NUM_CPUS", "2")]))
    try:
        head = k.run(op.head())
        assert head.exited.wait(120)
        errors = [l for l in head.logs().splitlines() if "error" in l]
        assert head.exit_code == 2 and len(errors) == 1, head.logs()
        assert "num_cpus is 1 from kuberay (--num-cpus in KUBERAY_GEN_RAY_START_CMD) but 2 from env " \
               "SEEDCORE_BOOT_NUM_CPUS" in errors[0]
        assert not ray_lines(head) and "Traceback" not in head.logs()
    finally:
        k.close()


def test_without_the_annotation_kuberays_rewritten_command_is_refused_naming_it(engine, tmp_path_factory):
    op, k = cluster(tmp_path_factory, "raycluster.yaml", "kr4", "10.211.4", head_only(annotations={}))
    try:
        plan = op.head()
        assert plan.containers[0].command == ["/bin/bash", "-lc", "--"]  # what KubeRay does without it
        head = k.run(plan)
        assert head.exited.wait(120)
        log = head.logs()
        # bash's `<ours> && ulimit -n 65536; ray start ...` runs the ray start whatever our exit code: only
        # SIGINT to it and our own death by SIGINT end its script (kuberay.CommandRewritten): 128 + 2.
        assert head.exit_code == 130, log
        errors = [l for l in log.splitlines() if l.startswith("seedcore-boot: error:")]
        assert len(errors) == 1 and 'ray.io/overwrite-container-cmd: "true"' in errors[0], log
        assert not ray_lines(head) and "Ray runtime started" not in log and "Traceback" not in log
    finally:
        k.close()


# --- RayService ---------------------------------------------------------------------------------------
def test_a_rayservice_head_deploys_nothing_and_kuberays_own_deploy_comes_up_running(engine, tmp_path_factory):
    op, k = cluster(tmp_path_factory, "rayservice.yaml", "kr5", "10.211.5")
    try:
        head = k.run(op.head())
        workers = [k.run(op.worker()) for _ in range(2)]
        head.wait_ready(300)
        log = head.logs()
        assert "this head belongs to a RayService" in log and "deploying" not in log, log[-3000:]
        assert applications(head, op.fqdn) == {}
        # KubeRay once the head is Ready (rayservice_controller.go updateServeDeployment): serveConfigV2 as
        # JSON, PUT to the dashboard through the head's Service, retried every 2 s until it answers 200.
        body = json.dumps(yaml.safe_load(op.serve_config))
        wait_for("KubeRay's PUT accepted", lambda: http(head, f"http://{op.fqdn}:8265/api/serve/applications/",
                                                         "PUT", body, timeout=2)[0] == 200, 120, step=2)
        # getAndCheckServeStatus: at least one application, all RUNNING.
        wait_for("every application RUNNING", lambda: (lambda a: a and all(x["status"] == "RUNNING"
                                                                           for x in a.values()))(
            applications(head, op.fqdn)), 240, step=2)
        for w in workers:  # their readiness includes Serve's proxy on them (/-/healthz), as KubeRay's does
            w.wait_ready(300)
            ready, _ = operator.default_probes("worker", rayservice=True)
            out = w.exec(ready.command, timeout=5)
            assert out.returncode == 0, (out.stdout, out.stderr)
        status, text = http(workers[0], f"http://{op.fqdn}:8000/health")
        assert status == 200, text
        assert "Serve" not in "".join(l for l in head.logs().splitlines() if l.startswith("seedcore-boot: error"))
    finally:
        k.close()


# --- GCS fault tolerance -----------------------------------------------------------------------------
def test_the_head_pod_recreated_against_redis_keeps_the_workers_and_the_app(engine, tmp_path_factory):
    op, k = cluster(tmp_path_factory, "raycluster-redis.yaml", "kr6", "10.211.6")
    try:
        redis = k.run(op.plain_pod(op.deployments()[0]))
        head = k.run(op.head())
        worker = k.run(op.worker())
        redis.wait_ready(60)
        head.wait_ready(300)
        worker.wait_ready(400)
        assert f"namespace '{op.uid}'" in head.logs() and "no earlier cluster" in head.logs()
        wait_for("the app", lambda: http(worker, f"http://{op.fqdn}:8000/health")[0] == 200, 180)
        before = nodes(worker, op.fqdn)[worker.ip]
        assert k.delete(head) == 0
        # The ReplicaSet-less head pod comes back as a new pod: another name, another address.
        again = k.run(op.head())
        assert again.ip != head.ip
        again.wait_ready(300)
        assert "recovering cluster state from Redis redis:6379" in again.logs(), again.logs()[-3000:]
        wait_for("the app through the head's Service again",
                 lambda: http(worker, f"http://{op.fqdn}:8000/health")[0] == 200, 180)
        after = wait_for("the worker's node ALIVE in the new head's GCS",
                         lambda: (lambda n: n.get(worker.ip) if n.get(worker.ip, ("",))[0] == "ALIVE" else None)(
                             nodes(worker, op.fqdn)), 60)
        assert worker.restarts == 0 and not worker.exited.is_set(), worker.logs()[-3000:]
        assert before[2] == after[2] and "gone since" not in worker.logs()  # the same Ray node, never left
        # ... and it works with the new head: a task placed on it runs (its raylet found the head's new address).
        out = again.exec(["python3", "-c", TASK_ON_NODE, after[2]], timeout=180)
        assert out.returncode == 0 and out.stdout.strip().splitlines()[-1] == worker.ip, out.stderr[-2000:]
    finally:
        k.close()


# --- mutual TLS ----------------------------------------------------------------------------------------
def test_a_tls_raycluster_forms_and_refuses_a_client_without_a_certificate(engine, tmp_path_factory):
    ca = tmp_path_factory.mktemp("ca")
    out = subprocess.run([sys.executable, "-m", "seedcore_boot", "tls", "init", str(ca)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr

    def with_secret(docs):  # what `kubectl create secret generic seedcore-ca --from-file=...` makes
        return docs + [kubectl.secret("seedcore-ca", {name: str(ca / name) for name in ("ca.crt", "ca.key")})]

    op, k = cluster(tmp_path_factory, "raycluster-tls.yaml", "kr7", "10.211.7", with_secret)
    try:
        head = k.run(op.head())
        worker = k.run(op.worker())
        head.wait_ready(300)
        worker.wait_ready(400)  # KubeRay's wait-gcs-ready reached the head with the pod's certificate
        exposure = [l for l in head.logs().splitlines() if "[exposure" in l and ":6379 " in l]
        assert exposure and "mutual TLS" in exposure[0], exposure
        assert len(nodes(head, "127.0.0.1")) == 2
        check = ["ray", "health-check", "--address", f"{op.fqdn}:6379"]
        assert worker.exec(check, timeout=60).returncode == 0  # with the pod's certificate (its environment)
        # The same check without it, all else equal, is refused by the handshake.
        plain = worker.exec(["env", "RAY_USE_TLS=0", *check], timeout=60)
        assert plain.returncode != 0, plain.stdout
        key = (ca / "ca.key").read_text().strip().splitlines()[1]
        assert key not in head.logs() + worker.logs()
    finally:
        k.close()
