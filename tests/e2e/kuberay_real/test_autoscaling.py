"""raycluster.yaml with KubeRay's in-tree autoscaler under the real operator v1.6.2: the sidecar with its
ServiceAccount and Role, demand that scales the group up, and the idle worker drained and deleted, exit 0."""

import os

import pytest

from tests import nshost
from tests.k8s.scenario import ready_pods, wait_started
from tests.kuberay import operator
from tests.kuberay.inpod import DEPLOY

pytestmark = [pytest.mark.e2e, pytest.mark.go_tools]


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


@pytest.fixture(scope="class")
def scaled(plane, node_agent):
    """Not a method of the class: pytest deprecates class-scoped fixtures defined as instance methods."""
    cp = plane
    for doc in _autoscaling(operator.documents(os.path.join(DEPLOY, "raycluster.yaml"))):
        cp.client.create(doc)
    head, (worker,) = wait_started(cp, node_agent, "seedcore", 1)
    return cp, node_agent, head, worker


class TestAutoscalingUnderTheRealOperator:
    AGENT = ("kscale", "10.212.5")

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
