"""raycluster-tls.yaml under the real KubeRay operator v1.6.2, its CA Secret made by docs/kubernetes.md's
block as typed: the cluster forms under mutual TLS, and pods without its CA are refused in one line."""

import base64
import json
import os
import shlex
import subprocess
import sys

import pytest

from tests import REPO, docblocks, nshost
from tests.e2e import userpaths
from tests.k8s import cluster, kubectl
from tests.k8s.scenario import linked_agent, pods_api, wait_started
from tests.kuberay.inpod import IMAGE, TASK_ON_NODE, applications, http, nodes, ray_lines

pytestmark = [pytest.mark.e2e, pytest.mark.go_tools]


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
