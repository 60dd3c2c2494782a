"""raycluster.yaml under the real KubeRay operator v1.6.2 and v1.1.1 on a real Kubernetes control plane
(tests/k8s/: etcd, kube-apiserver, kube-controller-manager, kube-scheduler and ray-operator built from their Go
modules by tests/k8s/build.sh, on a throwaway host of their own).

The operator builds the pods; the scheduler binds them to the Nodes of tests/k8s/agent.py, which runs them in
the real Docker engine as the emulation's kubelet does and reports their status back. Every request to Ray
is made from inside a pod, to the Services' names. Under v1.1.1, what the operator built is compared field
by field with what the emulation (tests/kuberay/operator.py) builds from the same manifest."""

import dataclasses
import json
import os

import pytest

from tests import nshost
from tests.k8s import podspec
from tests.k8s.scenario import FQDN, pods_api, start
from tests.kuberay import operator
from tests.kuberay.inpod import DEPLOY, applications, http, nodes, replica_ips

pytestmark = [pytest.mark.e2e, pytest.mark.go_tools]


@pytest.fixture(scope="class")
def rc(plane, node_agent):
    head, workers = start(plane, node_agent, os.path.join(DEPLOY, "raycluster.yaml"), "seedcore", 2)
    return plane, node_agent, head, workers


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
    """A pod plan (podspec.plan_of, or the emulation's operator.Pod) as comparable data: what the API server
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
            real = podspec.plan_of(cp.client.get(f"/api/v1/namespaces/default/pods/{pod.plan.name}"), cp.client)
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
