"""rayservice.yaml under the real KubeRay operator v1.6.2: the operator's own PUT and status polling bring the
app RUNNING and the RayService Ready, and a changed serveConfigV2 rolls out on the same cluster; the head
deploys nothing of its own."""

import json
import os
import re

import pytest

from tests import nshost
from tests.k8s.scenario import ready_pods, wait_started
from tests.kuberay.inpod import DEPLOY, applications, http

pytestmark = [pytest.mark.e2e, pytest.mark.go_tools]


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
