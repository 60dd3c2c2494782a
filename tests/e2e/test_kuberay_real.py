"""seedcore-boot under the real KubeRay operator on a real Kubernetes control plane (tests/k8s/: etcd,
kube-apiserver, kube-controller-manager, kube-scheduler and ray-operator built from their Go modules by
tests/k8s/build.sh, on a throwaway host of their own), from the shipped manifests (deploy/kuberay/).

The operator builds the pods; the scheduler binds them to the Nodes of tests/k8s/agent.py, which runs them in
the real Docker engine as the emulation's kubelet does and reports their status back. Every request to Ray
is made from inside a pod, to the Services' names.
"""

import base64
import json
import os
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

pytestmark = pytest.mark.e2e


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
def plane(bins):
    """One control plane per scenario: each scenario's pods are the only ones its nodes run."""
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
    return started(cp, node_agent, name, workers)


def started(cp, node_agent, name, workers):
    """(head, workers) once the operator's pods of RayCluster `name` are Ready."""
    try:
        head = nshost.wait_for("the head Ready", lambda: ready_pods(cp, node_agent, "head", 1, name), 400)[0]
        return head, nshost.wait_for(f"{workers} workers Ready",
                                     lambda: ready_pods(cp, node_agent, "worker", workers, name), 500)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nagent errors: {node_agent.errors[-5:]}\n"
                             f"operator:\n{cp.logs('ray-operator', 30)}") from None


@pytest.fixture(scope="class")
def node_agent(plane, tmp_path_factory, request):
    tag, subnet = request.cls.AGENT
    found = agent.NodeAgent(plane.client, tag, subnet, str(tmp_path_factory.mktemp(tag)),
                            kubelet_version=plane.kubernetes_version)
    try:
        yield found
    finally:
        found.close()


@pytest.fixture(scope="class")
def rc(plane, node_agent):
    head, workers = start(plane, node_agent, "raycluster.yaml", "seedcore", 2)
    return plane, node_agent, head, workers


FQDN = "seedcore-head-svc.default.svc.cluster.local"


class TestRayClusterUnderTheRealOperator:
    AGENT = ("kreal", "10.212.1")

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
    cp, node_agent = cluster.ControlPlane(bins), None
    try:
        node_agent = agent.NodeAgent(cp.client, "ktls", "10.212.6", str(tmp_path_factory.mktemp("ktls")),
                                     kubelet_version=cp.kubernetes_version)
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
        head, (worker,) = started(cp, node_agent, "seedcore-tls", 1)
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
