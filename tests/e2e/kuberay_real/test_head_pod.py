"""The head pod under the real KubeRay operator v1.6.2: deleted, and recreated against Redis with the worker
and the app kept (raycluster-redis.yaml); without the ray.io/overwrite-container-cmd annotation, refused in
one line with no Ray started."""

import os

import pytest

from tests import nshost
from tests.k8s.scenario import ready_pods, start
from tests.kuberay import operator
from tests.kuberay.inpod import DEPLOY, TASK_ON_NODE, head_only, http, nodes, ray_lines

pytestmark = [pytest.mark.e2e, pytest.mark.go_tools]


class TestHeadRecreatedAgainstRedis:
    AGENT = ("kredis", "10.212.2")
    FQDN = "seedcore-ft-head-svc.default.svc.cluster.local"

    def test_the_operator_recreates_a_deleted_head_and_the_worker_stays_with_the_app(self, plane, node_agent):
        cp = plane
        head, (worker,) = start(cp, node_agent, os.path.join(DEPLOY, "raycluster-redis.yaml"), "seedcore-ft", 1)
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
        docs = head_only(annotations={})(operator.documents(os.path.join(DEPLOY, "raycluster.yaml")))
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
