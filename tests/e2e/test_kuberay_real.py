"""seedcore-boot under the real KubeRay operator on a real Kubernetes control plane (tests/k8s/: etcd,
kube-apiserver, kube-controller-manager, kube-scheduler and ray-operator built from their Go modules by
tests/k8s/build.sh, on a throwaway host of their own), from the shipped manifests (deploy/kuberay/).

The operator builds the pods; the scheduler binds them to the Nodes of tests/k8s/agent.py, which runs them in
the real Docker engine as the emulation's kubelet does and reports their status back. Every request to Ray
is made from inside a pod, to the Services' names.
"""

import base64
import dataclasses
import json
import os
import re
import shlex
import subprocess
import sys

import pytest

from tests import docblocks, nshost
from tests.e2e import userpaths
from tests.e2e.test_kuberay import (DEPLOY, IMAGE, TASK_ON_NODE, _head_only, applications, build_image, http, nodes,
                                    ray_lines, replica_ips)
from tests.e2e.test_docker import REPO, _engine_or_skip
from tests.k8s import agent, cluster, kubectl
from tests.skips import need
from tests.kuberay import operator

pytestmark = [pytest.mark.e2e, pytest.mark.go_tools]


def _binaries_or_skip():
    bins = cluster.binaries()
    need(bins is not None, "needs the control plane and KubeRay built: bash tests/k8s/build.sh")
    need(*nshost.can_make_hosts())
    return bins


@pytest.fixture(scope="module")
def bins():
    found = _binaries_or_skip()
    _engine_or_skip()
    build_image()
    return found


@pytest.fixture(scope="class")
def plane(bins, request):
    """One control plane per scenario: each scenario's pods are the only ones its nodes run."""
    cp = cluster.ControlPlane(bins, request.cls.AGENT[1], kuberay=getattr(request.cls, "KUBERAY", None))
    try:
        yield cp
    finally:
        cp.close()


def pods_api(cp, **selector):
    query = ",".join(f"{k}={v}" for k, v in selector.items())
    return cp.client.get("/api/v1/namespaces/default/pods", labelSelector=query)["items"]


def is_ready(pod):
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions") or [])


def ready_pods(cp, node_agent, role, n, name="seedcore"):
    """The agent's running pods of `role`, once the API shows n of them Ready (else None)."""
    got = [p for p in pods_api(cp, **{"ray.io/cluster": name, "ray.io/node-type": role}) if is_ready(p)
           and not p["metadata"].get("deletionTimestamp")]
    if len(got) != n:
        return None
    return [node_agent.pods[p["metadata"]["name"]] for p in got]


def start(cp, node_agent, manifest, name, workers):
    """Apply a shipped manifest; (head, workers) once the operator's pods are Ready."""
    cp.client.apply_file(os.path.join(DEPLOY, manifest))
    return wait_started(cp, node_agent, name, workers)


def wait_started(cp, node_agent, name, workers):
    """(head, workers) of the RayCluster `name` once the operator's pods are Ready."""
    try:
        head = nshost.wait_for("the head Ready", lambda: ready_pods(cp, node_agent, "head", 1, name), 400)[0]
        return head, nshost.wait_for(f"{workers} workers Ready",
                                     lambda: ready_pods(cp, node_agent, "worker", workers, name), 500)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nagent errors: {node_agent.errors[-5:]}\n"
                             f"operator:\n{cp.logs('ray-operator', 30)}") from None


def linked_agent(cp, tag, subnet, tmp_path_factory):
    """A node agent of `cp` on its own pods' network `subnet`, the control plane linked into that network, as
    a cluster's control plane sits on the pod network."""
    found = agent.NodeAgent(cp.client, tag, subnet, str(tmp_path_factory.mktemp(tag)),
                            kubelet_version=cp.kubernetes_version)
    try:
        cp.link(found.network)
    except BaseException:
        found.close()
        raise
    return found


@pytest.fixture(scope="class")
def node_agent(plane, tmp_path_factory, request):
    found = linked_agent(plane, *request.cls.AGENT, tmp_path_factory)
    try:
        yield found
    finally:
        found.close()


@pytest.fixture(scope="class")
def rc(plane, node_agent):
    head, workers = start(plane, node_agent, "raycluster.yaml", "seedcore", 2)
    return plane, node_agent, head, workers


FQDN = "seedcore-head-svc.default.svc.cluster.local"

# From inside a pod: the API server where the kubelet's service links say, TLS checked against the cluster's
# CA, and the `kubernetes` Service's name resolving to it.
API_FROM_A_POD = r"""
import os, socket, ssl, sys, urllib.request
host, port = os.environ["KUBERNETES_SERVICE_HOST"], os.environ["KUBERNETES_SERVICE_PORT"]
ctx = ssl.create_default_context(cadata=sys.argv[1])
with urllib.request.urlopen(f"https://{host}:{port}/readyz", context=ctx, timeout=10) as r:
    print(host, port, socket.gethostbyname("kubernetes.default.svc.cluster.local"), r.read().decode())
"""


class TestRayClusterUnderTheRealOperator:
    AGENT = ("kreal", "10.212.1")
    READY_WORKERS = "readyWorkerReplicas"  # the RayCluster status field counting the workers (v1.6.2)

    def test_the_scheduler_bound_head_and_workers_to_the_agents_nodes_and_they_are_ready(self, rc):
        cp, node_agent, head, workers = rc
        pods = pods_api(cp, **{"ray.io/cluster": "seedcore"})
        assert {p["spec"]["nodeName"] for p in pods} <= set(node_agent.nodes)
        assert all(p["status"]["podIP"] == node_agent.pods[p["metadata"]["name"]].ip for p in pods)
        # The operator saw them Ready: the RayCluster's own status says so.
        status = nshost.wait_for("the RayCluster ready", lambda: (lambda s: s if s.get("state") == "ready" else None)(
            cp.client.get("/apis/ray.io/v1/namespaces/default/rayclusters/seedcore").get("status") or {}), 120)
        assert status[self.READY_WORKERS] == 2, status
        assert all(p.restarts == 0 for p in [head, *workers])
        assert node_agent.errors == [] and all(cp.alive().values()), (node_agent.errors, cp.alive())

    def test_the_operator_left_our_command_and_handed_us_its_ray_start(self, rc):
        cp, node_agent, head, workers = rc
        c = head.plan.containers[0]
        assert c.command == ["seedcore-boot", "head"]  # ray.io/overwrite-container-cmd honoured
        gen = c.env["KUBERAY_GEN_RAY_START_CMD"]
        assert gen.startswith("ray start --head") and "--num-cpus=0" in gen and "--memory=4294967296" in gen
        for w in workers:
            assert w.plan.containers[0].command == ["seedcore-boot", "worker"]
            assert f"--address={FQDN}:6379" in w.plan.containers[0].env["KUBERAY_GEN_RAY_START_CMD"]
        shown = json.loads(head.exec(["seedcore-boot", "config", "show", "--json"]).stdout)
        assert shown["num_cpus"] == {"value": 0, "source": "kuberay"} and shown["memory"]["source"] == "kuberay"

    def test_ray_has_three_nodes_and_the_sample_app_runs_on_a_worker(self, rc):
        cp, node_agent, head, workers = rc
        seen = nshost.wait_for("3 nodes ALIVE", lambda: (lambda n: n if len(n) == 3 else None)(nodes(head, FQDN)),
                               120)
        assert set(seen) == {p.ip for p in [head, *workers]}
        ips = nshost.wait_for("the replica RUNNING", lambda: replica_ips(head, FQDN), 300)
        assert set(ips) <= {w.ip for w in workers}, ips
        assert applications(head, FQDN)["ml"]["status"] == "RUNNING"
        status, text = http(workers[0], f"http://{FQDN}:8000/predict", "POST", json.dumps({"features": [[1, 0]]}))
        assert status == 200 and "positive" in text, text

    def test_the_control_plane_and_the_pods_reach_each_other_as_in_a_cluster(self, rc):
        cp, node_agent, head, workers = rc
        # What the operator does: the head Service's name through the cluster DNS, from the control plane's host.
        status, text = cp.host.http(f"http://{FQDN}:8265/api/version")
        assert status == 200 and "2.20.0" in text, text
        # Its only way out is the pods' network: no default route (the kernel's lookup; nothing is sent).
        routes = [line.split()[0] for line in cp.host.ip("-4", "route", "show").splitlines()]
        assert routes == [f"{cp.subnet}.0/24"], routes
        assert cp.host.run(["ip", "route", "get", "192.0.2.1"]).returncode != 0
        # A pod reaches the API server at the `kubernetes` Service's endpoint.
        with open(f"{cp.dir}/ca.crt", encoding="utf-8") as fh:
            out = workers[0].exec(["python3", "-c", API_FROM_A_POD, fh.read()], timeout=60)
        assert out.returncode == 0, out.stderr[-2000:]
        assert out.stdout.split() == [cp.address, "6443", cp.address, "ok"], out.stdout


def _as_emulated(plan, name):
    """A pod plan (agent.plan_of, or the emulation's operator.Pod) as comparable data: what the API server
    adds, not KubeRay (the ServiceAccount admission's kube-api-access-* volume; the defaults `protocol: TCP`
    of a port and `defaultMode: 420` of a ConfigMap volume) left out, the pod's own name as NAME,
    KUBERAY_GEN_RAY_START_CMD as its sorted words (v1.1.1's flag order is Go's map order)."""
    def container(c):
        c = dataclasses.asdict(c)
        c["mounts"] = [m for m in c["mounts"] if not m["name"].startswith("kube-api-access-")]
        c["ports"] = [{k: v for k, v in p.items() if (k, v) != ("protocol", "TCP")} for p in c["ports"]]
        c["env"] = {k: v.replace(name, "NAME") for k, v in c["env"].items()}
        if "KUBERAY_GEN_RAY_START_CMD" in c["env"]:
            c["env"]["KUBERAY_GEN_RAY_START_CMD"] = sorted(c["env"]["KUBERAY_GEN_RAY_START_CMD"].split())
        return c
    pod = dataclasses.asdict(plan)
    pod.update(name="NAME", containers=[container(c) for c in plan.containers],
               init=[container(c) for c in plan.init],
               volumes={k: v for k, v in pod["volumes"].items() if not k.startswith("kube-api-access-")})
    for v in pod["volumes"].values():
        if (v.get("configMap") or {}).get("defaultMode") == 0o644:
            v["configMap"] = {k: x for k, x in v["configMap"].items() if k != "defaultMode"}
    return pod


def differences(real, emulated, path=""):
    """Where two values of _as_emulated differ: ["path: real != emulated", ...]."""
    if isinstance(real, dict) and isinstance(emulated, dict):
        return [d for k in sorted(set(real) | set(emulated), key=str)
                for d in differences(real.get(k, "<absent>"), emulated.get(k, "<absent>"), f"{path}.{k}")]
    if isinstance(real, list) and isinstance(emulated, list) and len(real) == len(emulated) and all(
            isinstance(x, dict) for x in real + emulated):
        return [d for i, (a, b) in enumerate(zip(real, emulated)) for d in differences(a, b, f"{path}[{i}]")]
    return [] if real == emulated else [f"{path}: {real!r} != {emulated!r}"]


class TestRayClusterUnderKubeRayV111(TestRayClusterUnderTheRealOperator):
    """raycluster.yaml under the real KubeRay v1.1.1 (the release of Ray 2.20's time, which
    tests/kuberay/operator.py emulates): the same scenario, and what it builds compared with the emulation."""
    AGENT = ("kold", "10.212.7")
    KUBERAY = "v1.1.1"
    READY_WORKERS = "availableWorkerReplicas"  # v1.1.1's status has no readyWorkerReplicas

    def test_the_pods_are_what_the_emulation_builds(self, rc):
        cp, node_agent, head, workers = rc
        emulation = operator.Operator(operator.documents(os.path.join(DEPLOY, "raycluster.yaml")))
        found = {}
        for pod, emulated in [(head, emulation.head()), *((w, emulation.worker()) for w in workers)]:
            real = agent.plan_of(cp.client.get(f"/api/v1/namespaces/default/pods/{pod.plan.name}"), cp.client)
            found[pod.plan.role] = differences(_as_emulated(real, real.name), _as_emulated(emulated, emulated.name))
        assert found == {"head": [], "worker": []}, json.dumps(found, indent=1)
        # What v1.1.1 builds differently from v1.6.2: no RAY_CLUSTER_NAMESPACE; REDIS_PASSWORD always (empty:
        # no value at all in the API object); the workers' wait-gcs-ready under `bash -lc`; flags in Go's map
        # order. The same fieldRefs as v1.6.2 for the cluster name, group and pod name.
        for p in pods_api(cp, **{"ray.io/cluster": "seedcore"}):
            env = {e["name"]: e for e in p["spec"]["containers"][0]["env"]}
            assert env["RAY_CLOUD_INSTANCE_ID"]["valueFrom"] == {"fieldRef": {"apiVersion": "v1",
                                                                              "fieldPath": "metadata.name"}}, env
            assert "RAY_CLUSTER_NAMESPACE" not in env and env["REDIS_PASSWORD"] == {"name": "REDIS_PASSWORD"}, env
        gens = [p.plan.containers[0].env["KUBERAY_GEN_RAY_START_CMD"] for p in [head, *workers]]
        flags = [[w for w in g.split() if w.startswith("--")] for g in gens]
        assert any(f != sorted(f) for f in flags), gens  # all three sorted by chance (6 flags each): 1 in 720^3
        for w in workers:
            wait = w.plan.init[-1]
            assert wait.name == "wait-gcs-ready" and wait.command == ["/bin/bash", "-lc", "--"], wait
        # The head Service: a normal ClusterIP Service (v1.6.2: headless, publishNotReadyAddresses).
        svc = cp.client.get("/api/v1/namespaces/default/services/seedcore-head-svc")["spec"]
        assert svc["clusterIP"] not in (None, "None") and not svc.get("publishNotReadyAddresses"), svc


class TestHeadRecreatedAgainstRedis:
    AGENT = ("kredis", "10.212.2")
    FQDN = "seedcore-ft-head-svc.default.svc.cluster.local"

    def test_the_operator_recreates_a_deleted_head_and_the_worker_stays_with_the_app(self, plane, node_agent):
        cp = plane
        head, (worker,) = start(cp, node_agent, "raycluster-redis.yaml", "seedcore-ft", 1)
        uid = cp.client.get("/apis/ray.io/v1/namespaces/default/rayclusters/seedcore-ft")["metadata"]["uid"]
        # ray.io/ft-enabled: the operator hands the RayCluster's UID down as the storage namespace.
        assert f"namespace '{uid}'" in head.logs() and "no earlier cluster" in head.logs(), head.logs()[-3000:]
        nshost.wait_for("the app", lambda: http(worker, f"http://{self.FQDN}:8000/health")[0] == 200, 240)
        before = nodes(worker, self.FQDN)[worker.ip]
        # Deleted through the API, as `kubectl delete pod` does: the agent stops it with its grace period;
        # the operator sees its head gone and makes a new one, the scheduler binds it.
        cp.client.delete(f"/api/v1/namespaces/default/pods/{head.plan.name}")
        again = nshost.wait_for("a new head Ready", lambda: (lambda p: p if p and p[0].plan.name != head.plan.name
                                                             else None)(
            ready_pods(cp, node_agent, "head", 1, "seedcore-ft")), 400)[0]
        assert head.exit_code == 0 and again.ip != head.ip, (head.exit_code, head.logs()[-2000:])
        assert "recovering cluster state from Redis redis:6379" in again.logs(), again.logs()[-3000:]
        nshost.wait_for("the app through the head's Service again",
                        lambda: http(worker, f"http://{self.FQDN}:8000/health")[0] == 200, 240)
        after = nshost.wait_for("the worker's node ALIVE in the new head's GCS", lambda: (
            lambda n: n.get(worker.ip) if n.get(worker.ip, ("",))[0] == "ALIVE" else None)(
            nodes(worker, self.FQDN)), 120)
        assert worker.restarts == 0 and not worker.exited.is_set(), worker.logs()[-3000:]
        assert before[2] == after[2] and "gone since" not in worker.logs()  # the same Ray node, never left
        assert ready_pods(cp, node_agent, "worker", 1, "seedcore-ft")[0] is worker  # the operator kept it
        out = again.exec(["python3", "-c", TASK_ON_NODE, after[2]], timeout=180)
        assert out.returncode == 0 and out.stdout.strip().splitlines()[-1] == worker.ip, out.stderr[-2000:]
        assert node_agent.errors == [], node_agent.errors


class TestWithoutTheAnnotation:
    AGENT = ("knoann", "10.212.3")

    def test_the_operators_rewritten_command_is_refused_naming_it_and_no_ray_comes_up(self, plane, node_agent):
        cp = plane
        docs = _head_only(annotations={})(operator.documents(os.path.join(DEPLOY, "raycluster.yaml")))
        next(d for d in docs if d["kind"] == "RayCluster")["spec"].pop("workerGroupSpecs")
        for doc in docs:
            cp.client.create(doc)
        head = nshost.wait_for("the head pod", lambda: next(
            (p for p in list(node_agent.pods.values()) if p.plan.role == "head"), None), 240)
        assert head.exited.wait(180), head.logs()[-3000:]
        c = head.plan.containers[0]
        # KubeRay v1.6.2 rewrites the command under `bash -c` (v1.1.1: `bash -lc`).
        assert c.command == ["/bin/bash", "-c", "--"] and "ulimit -n 65536; ray start --head" in c.args[0], c.args
        log = head.logs()
        assert head.exit_code == 130, log
        errors = [line for line in log.splitlines() if line.startswith("seedcore-boot: error:")]
        assert len(errors) == 1 and 'ray.io/overwrite-container-cmd: "true"' in errors[0], log
        assert not ray_lines(head) and "Ray runtime started" not in log and "Traceback" not in log
        # The pod Failed (restartPolicy Never here): the operator replaces it, and the new one fails the same way.
        again = nshost.wait_for("a new head pod", lambda: next(
            (p for p in list(node_agent.pods.values()) if p.plan.role == "head" and p is not head), None), 240)
        assert again.exited.wait(180) and again.exit_code == 130, again.logs()[-3000:]


# --- RayService ---------------------------------------------------------------------------------------
RS = "/apis/ray.io/v1/namespaces/default/rayservices/seedcore-serve"
# BuildServeServiceForRayService: <rayservice>-serve-svc, selecting ray.io/cluster and ray.io/serve=true
SERVE_SVC = "seedcore-serve-serve-svc.default.svc.cluster.local"
FEATURES = json.dumps({"features": [[1, 0]]})
OUR_DEPLOY = re.compile(r"deploying \d+ (Serve )?application")  # seedcore-boot's line (node.py, serve.py)


def condition(obj, kind):
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == kind), {})


def rs_ready(cp):
    """The RayService once its Ready condition is True (else None)."""
    got = cp.client.get(RS)
    return got if condition(got, "Ready").get("status") == "True" else None


def rs_running(cp):
    """The RayService once Ready with its application RUNNING on the active cluster (else None)."""
    got = rs_ready(cp)
    apps = (got or {}).get("status", {}).get("activeServiceStatus", {}).get("applicationStatuses") or {}
    return got if apps and all(a.get("status") == "RUNNING" for a in apps.values()) else None


def puts(cp):
    """The serve configs the operator PUT to a dashboard, from its log (updateServeDeployment logs each
    one before it sends it: "MULTI_APP json config")."""
    return [line for line in list(cp.procs["ray-operator"].lines) if "MULTI_APP json config" in line]


def rayclusters(cp):
    return [c["metadata"]["name"] for c in cp.client.get("/apis/ray.io/v1/namespaces/default/rayclusters")["items"]]


def prediction(pod):
    """The sample app's answer through the RayService's serve Service, from inside `pod`."""
    status, text = http(pod, f"http://{SERVE_SVC}:8000/predict", "POST", FEATURES)
    return json.loads(text) if status == 200 else None


@pytest.fixture(scope="class")
def rs(plane, node_agent):
    cp = plane
    cp.client.apply_file(os.path.join(DEPLOY, "rayservice.yaml"))
    # The operator names the RayCluster it makes <rayservice>-<5 random> (v1.1.1: <rayservice>-raycluster-<5>).
    name = nshost.wait_for("the operator's RayCluster", lambda: rayclusters(cp), 120)[0]
    head, workers = wait_started(cp, node_agent, name, 2)
    return cp, node_agent, name, head, workers


class TestRayServiceUnderTheRealOperator:
    AGENT = ("kserve", "10.212.4")

    def test_the_operators_own_put_brings_the_app_running_and_the_rayservice_ready(self, rs):
        cp, node_agent, name, head, workers = rs
        try:
            got = nshost.wait_for("the RayService Ready, its app RUNNING", lambda: rs_running(cp), 400, step=2)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\noperator:\n{cp.logs('ray-operator', 40)}\nhead:\n{head.logs()[-3000:]}") \
                from None
        status = got["status"]
        assert status["serviceStatus"] == "Running" and status["numServeEndpoints"] >= 1, status
        active = status["activeServiceStatus"]
        assert active["rayClusterName"] == name and list(active["applicationStatuses"]) == ["ml"], active
        assert not (status.get("pendingServiceStatus") or {}).get("rayClusterName"), status
        # The operator deployed it (its PUT, through the head Service's name from the control plane's host) ...
        assert puts(cp) and all("version" in p and "default" in p for p in puts(cp)), cp.logs("ray-operator", 40)
        # ... and the head nothing of its own: it said so, and the one application is serveConfigV2's.
        log = head.logs()
        assert "this head belongs to a RayService" in log and not OUR_DEPLOY.search(log), log[-3000:]
        fqdn = f"{name}-head-svc.default.svc.cluster.local"
        apps = applications(head, fqdn)
        assert list(apps) == ["ml"], apps
        config = apps["ml"]["deployed_app_config"]["deployments"][0]
        assert config["num_replicas"] == 2 and config["user_config"]["version"] == "default", config
        # The operator checked the head's Serve proxy at its pod IP (:8000/-/healthz) and labelled it for the
        # serve Service, whose name a worker's request goes to.
        nshost.wait_for("the head labelled for the serve Service", lambda: cp.client.get(
            f"/api/v1/namespaces/default/pods/{head.plan.name}")["metadata"]["labels"].get("ray.io/serve") == "true",
                        60)
        answer = prediction(workers[0])
        assert answer and answer["predictions"][0]["label"] == "positive" and answer["model_version"] == "default", \
            answer
        assert node_agent.errors == [] and all(cp.alive().values()), (node_agent.errors, cp.alive())

    def test_a_changed_serveConfigV2_rolls_out_on_the_same_cluster(self, rs):
        cp, node_agent, name, head, workers = rs
        before = len(puts(cp))
        config = cp.client.get(RS)["spec"]["serveConfigV2"]
        changed = config.replace("weights: [1.0, -1.0]", "weights: [-1.0, 1.0]").replace("version: default",
                                                                                            "version: v2")
        assert changed.count("v2") == 1 and changed != config
        cp.client.merge_patch(RS, {"spec": {"serveConfigV2": changed}})
        # The operator's cached config differs: it PUTs the new one to the same cluster (no new RayCluster: the
        # rayClusterConfig did not change), and the replicas take the new user_config.
        answer = nshost.wait_for("the new model answering", lambda: (lambda a: a if a and a["model_version"] == "v2"
                                                                     else None)(prediction(workers[1])), 300, step=2)
        assert answer["predictions"][0]["label"] == "negative", answer
        new = puts(cp)[before:]
        assert new and all("v2" in p for p in new), new  # the new config PUT (again only if a PUT failed)
        print(f"PUTs: {before} for the first config, {len(new)} for the changed one")
        got = nshost.wait_for("the RayService Ready, its app RUNNING", lambda: rs_running(cp), 120, step=2)
        assert got["status"]["activeServiceStatus"]["rayClusterName"] == name
        assert rayclusters(cp) == [name]
        assert ready_pods(cp, node_agent, "worker", 2, name) == workers  # the same pods, never restarted
        assert all(p.restarts == 0 and not p.exited.is_set() for p in [head, *workers])
        assert not OUR_DEPLOY.search(head.logs())
        assert node_agent.errors == [], node_agent.errors


# --- mutual TLS -----------------------------------------------------------------------------------------
TLS_FQDN = "seedcore-tls-head-svc.default.svc.cluster.local"
TLS_ENV = {"RAY_USE_TLS": "1", "RAY_TLS_SERVER_CERT": "/etc/ray/tls/tls.crt",
           "RAY_TLS_SERVER_KEY": "/etc/ray/tls/tls.key", "RAY_TLS_CA_CERT": "/etc/ca/ca.crt"}


def outsider(name, own_ca):
    """A pod of the same image made through the API, no member of the cluster: `seedcore-boot worker` at the
    head's Service without the cluster's CA: no TLS at all, or TLS from a CA of its own (made and used as the
    manifest does with the real one)."""
    ray = {"name": "ray-worker", "image": IMAGE,
           "command": ["seedcore-boot", "worker", "--address", f"{TLS_FQDN}:6379"],
           "env": [{"name": "RAY_USAGE_STATS_ENABLED", "value": "0"}],
           "resources": {"limits": {"cpu": "500m", "memory": "1Gi"}}}
    spec = {"restartPolicy": "Never", "containers": [ray],
            "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 100, "fsGroup": 100}}
    if own_ca:
        mounts = [{"name": "ca", "mountPath": "/etc/ca"}, {"name": "tls", "mountPath": "/etc/ray/tls"}]
        spec["initContainers"] = [{"name": "own-ca", "image": IMAGE, "command": ["sh", "-c", (
            "seedcore-boot tls init /etc/ca && seedcore-boot tls issue /etc/ray/tls --ca-dir /etc/ca --name tls "
            "--this-host")], "volumeMounts": mounts}]
        spec["volumes"] = [{"name": "ca", "emptyDir": {}}, {"name": "tls", "emptyDir": {"medium": "Memory"}}]
        ray["env"] += [{"name": k, "value": v} for k, v in TLS_ENV.items()]
        ray["volumeMounts"] = mounts
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "outsider"}},
            "spec": spec}


def test_a_tls_raycluster_forms_under_mutual_tls_and_refuses_pods_without_its_ca(bins, tmp_path_factory):
    cp, node_agent = cluster.ControlPlane(bins, "10.212.6"), None
    try:
        node_agent = linked_agent(cp, "ktls", "10.212.6", tmp_path_factory)
        # docs/kubernetes.md's block as a user runs it, in a directory of their own with the repo's deploy/.
        user = tmp_path_factory.mktemp("user")
        os.symlink(os.path.join(REPO, "deploy"), user / "deploy")
        for line in docblocks.commands(docblocks.block("docs/kubernetes.md", sys._getframe().f_code.co_name)):
            if line.startswith("kubectl "):
                kubectl.run(cp.client, line, str(user))
            else:
                argv = shlex.split(line, comments=True)
                assert argv[0] == "seedcore-boot", line
                out = subprocess.run([sys.executable, "-m", "seedcore_boot", *argv[1:]], cwd=user,
                                     capture_output=True, text=True, timeout=60)
                assert out.returncode == 0, out.stderr
        data = cp.client.get("/api/v1/namespaces/default/secrets/seedcore-ca")["data"]
        assert base64.b64decode(data["ca.crt"]) == (user / "tls" / "ca.crt").read_bytes()
        head, (worker,) = wait_started(cp, node_agent, "seedcore-tls", 1)
        # The agent projected the Secret as the kubelet does: its bytes, defaultMode 0440, group fsGroup.
        out = head.exec(["sh", "-c", "stat -L -c '%a %g' /etc/ca/ca.key && cat /etc/ca/ca.crt"])
        assert out.stdout == "440 100\n" + (user / "tls" / "ca.crt").read_text(), out

        # What KubeRay v1.6.2 built: the user's init container first, with FQ_RAY_IP on the head too; the
        # workers' wait-gcs-ready after it, with the Ray container's TLS variables and mounts.
        pods = {p["metadata"]["name"]: p["spec"] for p in pods_api(cp, **{"ray.io/cluster": "seedcore-tls"})}
        head_init, worker_init = pods[head.plan.name]["initContainers"], pods[worker.plan.name]["initContainers"]
        assert [c["name"] for c in head_init] == ["issue-cert"], head_init
        assert {"name": "FQ_RAY_IP", "value": TLS_FQDN} in head_init[0]["env"]
        assert [c["name"] for c in worker_init] == ["issue-cert", "wait-gcs-ready"], worker_init
        wait = worker_init[1]
        assert wait["command"] == ["/bin/bash", "-c", "--"] and "ray health-check --address " \
            f"{TLS_FQDN}:6379" in wait["args"][0], wait
        assert {e["name"]: e.get("value") for e in wait["env"]}.items() >= TLS_ENV.items(), wait["env"]
        assert {m["mountPath"] for m in wait["volumeMounts"]} >= {"/etc/ca", "/etc/ray/tls"}
        # ... and `ray health-check` there passed under mutual TLS (its first form: quiet until it passes).
        waited = worker.logs(f"{worker.container}-init1")
        assert "GCS is ready.\n" in waited, waited

        # The head reports its listeners once ready (after its Serve app, which its Ready does not wait for).
        exposure = nshost.wait_for("the head's exposure report", lambda: [
            line for line in head.logs().splitlines() if "[exposure" in line and ":6379 " in line], 300)
        assert "mutual TLS" in exposure[0], exposure
        alive = nshost.wait_for("2 nodes ALIVE", lambda: (lambda n: n if len(n) == 2 else None)(
            nodes(head, TLS_FQDN)), 120)
        assert set(alive) == {head.ip, worker.ip}, alive
        # A driver in the head pod, after `seedcore-boot tls env` (docs/security.md), runs a task on the worker.
        out = head.exec(userpaths.in_tls_shell(["python3", "-c", TASK_ON_NODE, alive[worker.ip][2]]), timeout=180)
        assert out.returncode == 0 and out.stdout.strip().splitlines()[-1] == worker.ip, out.stderr[-2000:]
        # The sample app (the image's default Serve config) answers through the head Service's name.
        nshost.wait_for("the app RUNNING", lambda: applications(head, TLS_FQDN).get("ml", {}).get(
            "status") == "RUNNING", 240)
        status, text = http(worker, f"http://{TLS_FQDN}:8000/predict", "POST", json.dumps({"features": [[1, 0]]}))
        assert status == 200 and "positive" in text, text

        # Pods without the cluster's CA: each fails in the handshake with our one line and never becomes a node.
        for name in ("no-ca", "own-ca"):
            cp.client.create(outsider(name, own_ca=name == "own-ca"))
        causes = {"no-ca": "the head speaks mutual TLS and this node does not (tls is off here)",
                  "own-ca": "the head's certificate is not signed by this node's CA"}
        for name, cause in causes.items():
            pod = nshost.wait_for(f"pod {name} run", lambda n=name: node_agent.pods.get(n), 120)
            assert pod.exited.wait(240), pod.logs()[-3000:]
            log = pod.logs()
            errors = [line for line in log.splitlines() if line.startswith("seedcore-boot: error:")]
            assert pod.exit_code == 1 and len(errors) == 1, (pod.exit_code, pod.failure, log[-3000:])
            assert f"the TLS handshake with the head at {TLS_FQDN}:6379 ({head.ip}) failed: {cause}" in errors[0], log
            assert not ray_lines(pod) and "Ray runtime started" not in log and "Traceback" not in log, log[-3000:]
            assert nshost.wait_for(f"pod {name} Failed in the API", lambda n=name: cp.client.get(
                f"/api/v1/namespaces/default/pods/{n}")["status"]["phase"] == "Failed", 60)
        status, text = http(head, f"http://{TLS_FQDN}:8265/nodes?view=summary")  # every node, ALIVE or DEAD
        assert {n["raylet"]["nodeManagerAddress"] for n in json.loads(text)["data"]["summary"]} == {head.ip, worker.ip}
        key = (user / "tls" / "ca.key").read_text().strip().splitlines()[1]
        assert not any(key in p.logs() for p in (head, worker)) and node_agent.errors == [], node_agent.errors
    finally:
        if node_agent:
            node_agent.close()
        cp.close()


# --- autoscaling ---------------------------------------------------------------------------------------
def _autoscaling(docs):
    """raycluster.yaml with KubeRay's in-tree autoscaler (no shipped manifest has it): one worker to start
    (it holds the Serve replica, the head has no CPU), up to the manifest's maxReplicas 4, idle workers
    removed after 15 s (Ray's default: 60) to keep the scenario short."""
    rc = next(d for d in docs if d["kind"] == "RayCluster")
    rc["spec"]["enableInTreeAutoscaling"] = True
    rc["spec"]["autoscalerOptions"] = {"idleTimeoutSeconds": 15}
    rc["spec"]["workerGroupSpecs"][0]["replicas"] = 1
    return docs


# A driver in the head pod asking for a CPU no node has free (the worker's one holds the Serve replica): an
# actor, which the autoscaler must find a new worker for. It prints where the actor ran, then exits, and
# the actor with it: that worker is idle from then on.
DEMAND = r"""
import sys, ray
ray.init(logging_level="ERROR", log_to_driver=False)  # RAY_ADDRESS: the head's, set by KubeRay
@ray.remote(num_cpus=1)
class Holder:
    def where(self):
        return ray.util.get_node_ip_address()
holder = Holder.remote()  # held: an actor whose handle is gone is killed
print(ray.get(holder.where.remote(), timeout=float(sys.argv[1])))
"""

RC = "/apis/ray.io/v1/namespaces/default/rayclusters/seedcore"


def replicas(cp):
    return cp.client.get(RC)["spec"]["workerGroupSpecs"][0]["replicas"]


class TestAutoscalingUnderTheRealOperator:
    AGENT = ("kscale", "10.212.5")

    @pytest.fixture(scope="class")
    def scaled(self, plane, node_agent):
        cp = plane
        for doc in _autoscaling(operator.documents(os.path.join(DEPLOY, "raycluster.yaml"))):
            cp.client.create(doc)
        head, (worker,) = wait_started(cp, node_agent, "seedcore", 1)
        return cp, node_agent, head, worker

    def test_the_operator_adds_the_autoscaler_sidecar_its_service_account_and_role(self, scaled):
        cp, node_agent, head, worker = scaled
        pod = cp.client.get(f"/api/v1/namespaces/default/pods/{head.plan.name}")
        ray_c, sidecar = pod["spec"]["containers"]
        # KubeRay v1.6.2 BuildAutoscalerContainer: the Ray container's image under `bash -c` (the annotation
        # concerns the Ray container only), autoscaler v1 (no RAY_ENABLE_AUTOSCALER_V2 without
        # autoscalerOptions.version: v2), Ray's monitor off in the head's generated command.
        assert sidecar["name"] == "autoscaler" and sidecar["image"] == ray_c["image"]
        assert sidecar["command"] == ["/bin/bash", "-c", "--"] and sidecar["args"] == [
            "ray kuberay-autoscaler --cluster-name $(RAY_CLUSTER_NAME) --cluster-namespace $(RAY_CLUSTER_NAMESPACE)"]
        assert [e["name"] for e in sidecar["env"]] == ["RAY_CLUSTER_NAME", "RAY_CLUSTER_NAMESPACE",
                                                      "RAY_HEAD_POD_NAME", "KUBERAY_CRD_VER"]
        assert sidecar["resources"]["limits"] == {"cpu": "500m", "memory": "512Mi"}
        assert "RAY_ENABLE_AUTOSCALER_V2" not in {e["name"] for e in ray_c["env"]}
        assert "--no-monitor" in head.plan.containers[0].env["KUBERAY_GEN_RAY_START_CMD"]
        # Ray's logs shared through an emptyDir at /tmp/ray; the service account's token where Ray reads it.
        mounts = {m["mountPath"]: m["name"] for m in sidecar["volumeMounts"]}
        assert mounts["/tmp/ray"] == "ray-logs" and "/var/run/secrets/kubernetes.io/serviceaccount" in mounts
        assert {m["mountPath"]: m["name"] for m in ray_c["volumeMounts"]}["/tmp/ray"] == "ray-logs"
        assert pod["spec"]["serviceAccountName"] == "seedcore"
        ns = "/api/v1/namespaces/default"
        assert cp.client.get(f"{ns}/serviceaccounts/seedcore")["metadata"]["labels"]["ray.io/cluster"] == "seedcore"
        rbac = "/apis/rbac.authorization.k8s.io/v1/namespaces/default"
        rules = {(tuple(r["apiGroups"]), tuple(r["resources"])): r["verbs"]
                 for r in cp.client.get(f"{rbac}/roles/seedcore")["rules"]}
        assert rules == {(("",), ("pods",)): ["get", "list", "watch", "patch"], (("",), ("pods/resize",)): ["patch"],
                         (("ray.io",), ("rayclusters",)): ["get", "patch"]}
        binding = cp.client.get(f"{rbac}/rolebindings/seedcore")
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "seedcore", "namespace": "default"}]
        # Our head runs without Ray's monitor and says nothing against the sidecar.
        assert "seedcore-boot: error" not in head.logs() and "Traceback" not in head.logs()

    def test_the_sidecar_reads_the_raycluster_with_its_token_and_runs_the_autoscaler(self, scaled):
        cp, node_agent, head, worker = scaled
        sidecar = head.sidecars["autoscaler"]
        try:
            nshost.wait_for("the autoscaler's first round", lambda: "Resources" in sidecar.logs(), 240)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\nautoscaler:\n{sidecar.logs()[-4000:]}") from None
        log = sidecar.logs()
        # Its first rounds: the head group read from the RayCluster (Ray's KubeRay node provider, through the
        # API server with the pod's token), the head's resources from the GCS.
        assert "head-group" in log and "memory" in log, log[-4000:]
        assert sidecar.restarts == 0 and "Traceback" not in log, log[-4000:]

    def test_demand_scales_the_group_up_and_the_idle_worker_is_drained_and_deleted_exit_0(self, scaled):
        cp, node_agent, head, worker = scaled
        sidecar = head.sidecars["autoscaler"]
        out = head.exec(["python3", "-c", DEMAND, "500"], timeout=560)
        assert out.returncode == 0, f"{out.stderr[-3000:]}\nautoscaler:\n{sidecar.logs()[-4000:]}"
        where = out.stdout.strip().splitlines()[-1]
        # The autoscaler PATCHed replicas 1 -> 2; the operator made the pod, the scheduler bound it, the agent
        # ran it: the actor ran there.
        added = next(p for p in list(node_agent.pods.values()) if p.ip == where)
        assert added.plan.role == "worker" and added is not worker and added is not head
        assert added.plan.name in sidecar.logs() or "'value': 2" in sidecar.logs(), sidecar.logs()[-4000:]
        # Idle from now on: after idleTimeoutSeconds the autoscaler drains its node through the GCS, then
        # PATCHes replicas back to 1 with the pod in workersToDelete, and the operator deletes the pod.
        try:
            nshost.wait_for("the added worker's pod deleted", lambda: cp.client.get_or_none(
                f"/api/v1/namespaces/default/pods/{added.plan.name}") is None, 300)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\nautoscaler:\n{sidecar.logs()[-4000:]}\nworker:\n{added.logs()[-3000:]}") \
                from None
        assert added.exited.wait(60)
        log = added.logs()
        assert added.exit_code == 0 and added.restarts == 0, (added.exit_code, log[-3000:])
        assert "this node was drained by the cluster" in log and "exit 0" in log, log[-3000:]
        assert "seedcore-boot: error" not in log and "Traceback" not in log
        assert replicas(cp) == 1
        patches = [l for l in sidecar.logs().splitlines() if "workersToDelete" in l]
        assert any(added.plan.name in l for l in patches), sidecar.logs()[-4000:]
        # The first worker, with the Serve replica, stayed.
        assert ready_pods(cp, node_agent, "worker", 1) == [worker] and worker.restarts == 0
        assert node_agent.errors == [], node_agent.errors
