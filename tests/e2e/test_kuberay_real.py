"""seedcore-boot under the real KubeRay operator on a real Kubernetes control plane (tests/k8s/: etcd,
kube-apiserver, kube-controller-manager, kube-scheduler and ray-operator built from their Go modules by
tests/k8s/build.sh, on a throwaway host of their own), from the shipped manifests (deploy/kuberay/).

The operator builds the pods; the scheduler binds them to the Nodes of tests/k8s/agent.py, which runs them in
the real Docker engine as the emulation's kubelet does and reports their status back. Every request to Ray
is made from inside a pod, to the Services' names.
"""

import json
import os

import pytest

from tests import nshost
from tests.e2e.test_kuberay import DEPLOY, applications, build_image, http, nodes, replica_ips
from tests.e2e.test_docker import _engine_or_skip
from tests.k8s import agent, cluster

pytestmark = pytest.mark.e2e


def _binaries_or_skip():
    bins = cluster.binaries()
    if bins is None:
        why = "needs the control plane and KubeRay built: bash tests/k8s/build.sh"
        if os.environ.get("SEEDCORE_REQUIRE_ALL") == "1":
            pytest.fail(f"the real-KubeRay tests are required here but cannot run: {why}")
        pytest.skip(why)
    ok, why = nshost.can_make_hosts()
    if not ok:
        pytest.skip(why)
    return bins


@pytest.fixture(scope="module")
def plane():
    bins = _binaries_or_skip()
    _engine_or_skip()
    build_image()
    cp = cluster.ControlPlane(bins)
    try:
        yield cp
    finally:
        cp.close()


def pods_api(cp, **selector):
    query = ",".join(f"{k}={v}" for k, v in selector.items())
    return cp.client.get("/api/v1/namespaces/default/pods", labelSelector=query)["items"]


def is_ready(pod):
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions") or [])


def ready_pods(cp, node_agent, role, n):
    """The agent's running pods of `role`, once the API shows n of them Ready (else None)."""
    got = [p for p in pods_api(cp, **{"ray.io/cluster": "seedcore", "ray.io/node-type": role}) if is_ready(p)
           and not p["metadata"].get("deletionTimestamp")]
    if len(got) != n:
        return None
    return [node_agent.pods[p["metadata"]["name"]] for p in got]


@pytest.fixture(scope="module")
def rc(plane, tmp_path_factory):
    cp = plane
    node_agent = agent.NodeAgent(cp.client, "kreal", "10.212.1", str(tmp_path_factory.mktemp("kreal")),
                                 kubelet_version=cp.kubernetes_version)
    try:
        cp.client.apply_file(os.path.join(DEPLOY, "raycluster.yaml"))
        diag = lambda: f"agent errors: {node_agent.errors[-5:]}\noperator:\n{cp.logs('ray-operator', 30)}"  # noqa: E731
        try:
            head = nshost.wait_for("the head Ready", lambda: ready_pods(cp, node_agent, "head", 1), 400)[0]
            workers = nshost.wait_for("two workers Ready", lambda: ready_pods(cp, node_agent, "worker", 2), 500)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{diag()}") from None
        yield cp, node_agent, head, workers
    finally:
        node_agent.close()


FQDN = "seedcore-head-svc.default.svc.cluster.local"


class TestRayClusterUnderTheRealOperator:
    def test_the_scheduler_bound_head_and_workers_to_the_agents_nodes_and_they_are_ready(self, rc):
        cp, node_agent, head, workers = rc
        pods = pods_api(cp, **{"ray.io/cluster": "seedcore"})
        assert {p["spec"]["nodeName"] for p in pods} <= set(node_agent.nodes)
        assert all(p["status"]["podIP"] == node_agent.pods[p["metadata"]["name"]].ip for p in pods)
        # The operator saw them Ready: the RayCluster's own status says so.
        status = nshost.wait_for("the RayCluster ready", lambda: (lambda s: s if s.get("state") == "ready" else None)(
            cp.client.get("/apis/ray.io/v1/namespaces/default/rayclusters/seedcore").get("status") or {}), 120)
        assert status["readyWorkerReplicas"] == 2, status
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
