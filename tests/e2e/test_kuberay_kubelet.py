"""deploy/kuberay/raycluster.yaml under the real KubeRay operator on the real kubelet (issue #25): one
control plane (tests/k8s/cluster.py: etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
ray-operator) and one Node run by the real kubelet with Debian's containerd, runc and CNI plugins
(tests/k8s/node.py), the project's image imported into that containerd.

Everything between the manifest and the processes is the real thing: the operator builds the pods, the
scheduler binds them, the kubelet runs them through the CRI with the manifest's own exec probes, volumes,
limits and securityContext, and reports their status; the endpointslice controller publishes the head's
address, which the cluster DNS (svcdns.py) serves to the pods. Requests to Ray are made from inside the
pods, through the API's exec (API server -> kubelet -> containerd), to the head Service's name.
"""

import copy
import glob
import json
import os
import subprocess

import pytest

from tests import nshost
from tests.dockerhosts import engine_or_skip
from tests.k8s import node, podexec
from tests.k8s.cluster import ControlPlane
from tests.k8s.scenario import FQDN, binaries_or_skip, pods_api, ready_api_pods
from tests.kuberay import operator
from tests.kuberay.inpod import DEPLOY, IMAGE, applications, build_image, http, nodes, replica_ips
from tests.skips import need

pytestmark = [pytest.mark.e2e, pytest.mark.go_tools]

RC = "/apis/ray.io/v1/namespaces/default/rayclusters/seedcore"


class ApiPod:
    """A pod as tests/e2e/test_kuberay.py's helpers use one: its IP, and exec through the API."""

    def __init__(self, client, pod):
        self.client, self.name, self.ip = client, pod["metadata"]["name"], pod["status"]["podIP"]
        self.container = pod["spec"]["containers"][0]["name"]

    def exec(self, argv, timeout=30):
        return podexec.run(self.client, self.name, argv, container=self.container, timeout=timeout)


def _one_worker(docs):
    """The node has the machine's 2 CPUs (the kubelet reports them as its capacity); the manifest's head
    (1 CPU) and two workers (1 CPU each) would leave one worker Pending, unschedulable. One worker fits."""
    docs = copy.deepcopy(docs)
    group = next(d for d in docs if d["kind"] == "RayCluster")["spec"]["workerGroupSpecs"][0]
    group["replicas"] = 1
    return docs


@pytest.fixture(scope="module")
def plane():
    bins, kubelet_bins = binaries_or_skip(), node.binaries()
    need(kubelet_bins is not None, "needs the kubelet built: bash tests/k8s/kubelet.sh")
    need(not node.missing(), f"needs Debian's {', '.join(node.missing())}")
    engine_or_skip()
    build_image()
    cp = ControlPlane(bins, name="kubelet")
    try:
        n = node.KubeletNode(cp, kubelet_bins)
        try:
            tar = f"{n.dir}/images/ray.tar"
            out = subprocess.run(["docker", "save", "-o", tar, IMAGE], capture_output=True, text=True, timeout=900)
            assert out.returncode == 0, out.stderr[-2000:]
            n.import_image(tar)  # `docker save` names it docker.io/seedcore-boot/ray:2.20.0, as the CRI asks
            os.remove(tar)
            for doc in _one_worker(operator.documents(os.path.join(DEPLOY, "raycluster.yaml"))):
                cp.client.create(doc)
            yield cp, n
        finally:
            n.close()
    finally:
        cp.close()


def _restarts(cp):
    return {p["metadata"]["name"]: [(c["name"], c.get("restartCount"), list(c["state"])[0])
                                    for c in (p["status"].get("initContainerStatuses") or [])
                                    + (p["status"].get("containerStatuses") or [])]
            for p in pods_api(cp, **{"ray.io/cluster": "seedcore"})}


def _ready(cp, role):
    got = ready_api_pods(cp, role)
    return got[0] if len(got) == 1 else None


@pytest.fixture(scope="module")
def rc(plane):
    cp, n = plane
    try:
        head = nshost.wait_for("the head Ready", lambda: _ready(cp, "head"), 600)
        worker = nshost.wait_for("the worker Ready", lambda: _ready(cp, "worker"), 600)
    except AssertionError as exc:
        events = cp.client.get("/api/v1/namespaces/default/events")["items"]
        raise AssertionError(
            f"{exc}\nrestarts (container, count, state): {_restarts(cp)}\n"
            f"events: {[(e['involvedObject']['name'], e['reason'], e.get('count'), e['message'][:200]) for e in events][-15:]}\n"
            f"dns errors: {n.dns.errors[-3:]}\nkubelet:\n{n.logs('kubelet', 30)}\n"
            f"operator:\n{cp.logs('ray-operator', 20)}") from None
    return cp, n, ApiPod(cp.client, head), ApiPod(cp.client, worker)


def test_head_and_worker_ready_on_the_kubelets_node_and_the_raycluster_ready(rc):
    cp, n, head, worker = rc
    pods = pods_api(cp, **{"ray.io/cluster": "seedcore"})
    assert {p["spec"]["nodeName"] for p in pods} == {n.name}
    assert all(p["status"]["podIP"].startswith(node.POD_SUBNET.rsplit(".", 1)[0] + ".") for p in pods)
    status = nshost.wait_for("the RayCluster ready", lambda: (lambda s: s if s.get("state") == "ready" else None)(
        cp.client.get(RC).get("status") or {}), 180)
    assert status["readyWorkerReplicas"] == 1, status
    # The worker's wait-gcs-ready init container resolved the head Service's name through the cluster DNS.
    worker_pod = cp.client.get(f"/api/v1/namespaces/default/pods/{worker.name}")
    init = worker_pod["status"]["initContainerStatuses"][0]
    assert init["name"] == "wait-gcs-ready" and init["state"]["terminated"]["exitCode"] == 0, init
    assert n.dns.errors == [] and all(cp.alive().values()), (n.dns.errors, cp.alive())


def test_the_apis_exec_shows_the_settings_kuberay_handed_down(rc):
    cp, n, head, worker = rc
    out = head.exec(["seedcore-boot", "config", "show", "--json"], timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    shown = json.loads(out.stdout)
    assert shown["num_cpus"] == {"value": 0, "source": "kuberay"} and shown["memory"]["source"] == "kuberay"
    # A failing command's exit code comes back through the same path (the final Status frame).
    assert head.exec(["sh", "-c", "exit 3"]).returncode == 3


def test_the_sample_app_runs_on_the_worker_and_answers_through_the_head_services_name(rc):
    cp, n, head, worker = rc
    seen = nshost.wait_for("2 nodes ALIVE", lambda: (lambda s: s if len(s) == 2 else None)(nodes(worker, FQDN)),
                           180)
    assert set(seen) == {head.ip, worker.ip}
    assert nshost.wait_for("the replica RUNNING", lambda: replica_ips(worker, FQDN), 400) == [worker.ip]
    assert applications(worker, FQDN)["ml"]["status"] == "RUNNING"
    status, text = http(worker, f"http://{FQDN}:8000/predict", "POST", json.dumps({"features": [[1, 0]]}))
    assert status == 200 and "positive" in text, text


def test_logs_through_the_kubelet_the_limits_in_the_cgroups_and_nothing_left_after_delete(rc):
    cp, n, head, worker = rc
    # pods/log: API server -> the kubelet's API -> the container's log file.
    log = cp.client.request("GET", f"/api/v1/namespaces/default/pods/{head.name}/log?container={head.container}")
    assert "ray runtime started" in log, log[-2000:]
    # The memory limit as the kubelet and runc applied it, in the node's own cgroup root.
    for pod, limit in ((head, 4 * 2**30), (worker, 3 * 2**30)):
        uid = cp.client.get(f"/api/v1/namespaces/default/pods/{pod.name}")["metadata"]["uid"]
        files = glob.glob(f"/sys/fs/cgroup/memory{n.cgroup_root}/kubepods/**/pod{uid}/*/memory.limit_in_bytes",
                          recursive=True)
        limits = [open(f, encoding="utf-8").read().strip() for f in files]
        assert str(limit) in limits, (pod.name, files, limits)
    # The RayCluster deleted: the garbage collector deletes its pods, the kubelet stops them (SIGTERM, the
    # grace period) and removes them from the API; no process is left in any pod's cgroup of the node (pod
    # processes live in pid namespaces of their own: their cgroups are where the kubelet and runc put them).
    assert _pod_processes(n), "no process found in the node's pod cgroups while its pods run"
    cp.client.delete(RC)
    nshost.wait_for("the pods gone from the API", lambda: not pods_api(cp, **{"ray.io/cluster": "seedcore"}), 300)
    nshost.wait_for("no process left in the node's pod cgroups", lambda: not _pod_processes(n), 120)


def _pod_processes(n):
    return [pid for f in glob.glob(f"/sys/fs/cgroup/memory{n.cgroup_root}/kubepods/**/cgroup.procs", recursive=True)
            for pid in open(f, encoding="utf-8").read().split()]
