"""What every scenario under the real operator does with its control plane (cluster.py) and its pods: the
binaries or a skip, the pods through the API, waiting for them Ready, and a node agent (agent.py) linked into
the control plane's network. For tests/e2e/kuberay_real/ and tests/e2e/test_kuberay_kubelet.py."""

from tests import nshost
from tests.k8s import agent, cluster
from tests.skips import need

# The head Service of the shipped raycluster.yaml, as workers and the operator reach it.
FQDN = "seedcore-head-svc.default.svc.cluster.local"


def binaries_or_skip():
    bins = cluster.binaries()
    need(bins is not None, "needs the control plane and KubeRay built: bash tests/k8s/build.sh")
    need(*nshost.can_make_hosts())
    return bins


def pods_api(cp, **selector):
    query = ",".join(f"{k}={v}" for k, v in selector.items())
    return cp.client.get("/api/v1/namespaces/default/pods", labelSelector=query)["items"]


def is_ready(pod):
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions") or [])


def ready_api_pods(cp, role, name="seedcore"):
    """The API's pods of `role` in the RayCluster `name` that are Ready and not being deleted."""
    return [p for p in pods_api(cp, **{"ray.io/cluster": name, "ray.io/node-type": role}) if is_ready(p)
            and not p["metadata"].get("deletionTimestamp")]


def ready_pods(cp, node_agent, role, n, name="seedcore"):
    """The agent's running pods of `role`, once the API shows n of them Ready (else None)."""
    got = ready_api_pods(cp, role, name)
    if len(got) != n:
        return None
    return [node_agent.pods[p["metadata"]["name"]] for p in got]


def start(cp, node_agent, manifest, name, workers):
    """Apply a manifest (its path); (head, workers) once the operator's pods are Ready."""
    cp.client.apply_file(manifest)
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
