"""One pod through the real kubelet (tests/k8s/node.py) on a real control plane (cluster.py).

Not collected by a plain `pytest` run (its name has no test_ prefix): CI does not build the kubelet yet
(tests/k8s/kubelet.sh; the lead decides), and under SEEDCORE_REQUIRE_ALL=1 a missing build would fail.
Run it by name:  bash tests/k8s/build.sh && bash tests/k8s/kubelet.sh && \
                 python -m pytest tests/k8s/kubelet_pod.py
"""

import glob

import pytest

from tests import nshost
from tests.k8s import cluster, node
from tests.skips import need

pytestmark = pytest.mark.e2e

MEMORY = 64 * 2**20


@pytest.fixture(scope="module")
def plane():
    bins, kubelet_bins = cluster.binaries(), node.binaries()
    need(bins is not None, "needs the control plane built: bash tests/k8s/build.sh")
    need(kubelet_bins is not None, "needs the kubelet built: bash tests/k8s/kubelet.sh")
    need(not node.missing(), f"needs Debian's {', '.join(node.missing())}")
    need(*nshost.can_make_hosts())
    cp = cluster.ControlPlane(bins, name="kubelet")
    try:
        n = node.KubeletNode(cp, kubelet_bins)
        try:
            yield cp, n
        finally:
            n.close()
    finally:
        cp.close()


def _pod(name):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {
        "terminationGracePeriodSeconds": 10,
        "containers": [{
            "name": "hello", "image": node.HELLO_IMAGE, "imagePullPolicy": "Never",
            "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
            "resources": {"limits": {"cpu": "100m", "memory": str(MEMORY)}},
            "readinessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1}}]}}


def test_a_pod_runs_ready_on_the_real_kubelet_and_goes_away_when_deleted(plane):
    cp, n = plane
    cp.client.create(_pod("hello"))
    path = "/api/v1/namespaces/default/pods/hello"

    def ready():
        pod = cp.client.get(path)
        return pod if any(c["type"] == "Ready" and c["status"] == "True"
                          for c in pod["status"].get("conditions") or []) else None
    try:
        pod = nshost.wait_for("pod hello Ready", ready, 180)
    except AssertionError as e:
        raise AssertionError(f"{e}\nkubelet:\n{n.logs('kubelet')}\ncontainerd:\n{n.logs('containerd')}") from None

    # Bound by the real scheduler, its address from the CNI bridge, its env from the pod's fieldRef.
    assert pod["spec"]["nodeName"] == n.name and pod["status"]["qosClass"] == "Guaranteed"
    ip = pod["status"]["podIP"]
    assert ip.startswith(node.POD_SUBNET.rsplit(".", 1)[0] + "."), ip
    assert cp.host.http(f"http://{ip}:8080/") == (200, "hello from hello")
    # The API server's log request, through the kubelet's own API, to the container's log file.
    assert "hello: serving on :8080 as hello" in cp.client.request("GET", f"{path}/log")
    # The limit as the kubelet and runc applied it: a Guaranteed pod's cgroup under the node's own root.
    pod_cgroup = f"/sys/fs/cgroup/memory{n.cgroup_root}/kubepods/pod{pod['metadata']['uid']}"
    files = glob.glob(f"{pod_cgroup}/memory.limit_in_bytes") + glob.glob(f"{pod_cgroup}/*/memory.limit_in_bytes")
    limits = {f: open(f, encoding="utf-8").read().strip() for f in files}
    assert limits.get(f"{pod_cgroup}/memory.limit_in_bytes") == str(MEMORY), limits
    assert list(limits.values()).count(str(MEMORY)) == 2, limits  # the pod's and its container's (not pause's)

    cp.client.delete(path)
    nshost.wait_for("pod hello gone from the API", lambda: cp.client.get_or_none(path) is None, 120)
    assert not [p for p in n.host.processes() if p.info["name"] == "hello"]
