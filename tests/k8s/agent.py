"""A node agent of the real API server (cluster.py): the kubelet emulation of tests/kuberay/kubelet.py, fed
from the API instead of from the emulated operator.

- Registers Nodes (Ready, with capacity, a Lease renewed as the kubelet's heartbeat), all backed by the
  machine's one Docker engine and one --internal Docker network: the nodes are where the real scheduler
  binds pods, the engine is where they run.
- Runs the pods bound to its nodes exactly as the emulation runs one (tests/kuberay/pods.py: the pod's image,
  env with fieldRefs and secretKeyRefs resolved, command and args with $(VAR) expanded, volumes, CPU and
  memory limits, /dev/shm, securityContext, exec probes at their periods and thresholds, restart policy,
  deletion with SIGTERM then SIGKILL after the grace period), then reports phase, conditions, pod IP and
  container states to the pod's status subresource, as the kubelet does. A pod's other containers (KubeRay's
  autoscaler) run beside its first, in its network namespace (pods.Sidecar).
- The projected volume the API server's ServiceAccount admission adds to every pod is filled as the kubelet
  fills it: a token from the TokenRequest API bound to the pod, the CA of the kube-root-ca.crt ConfigMap, the
  namespace.
- A pod given a deletionTimestamp is stopped with its grace period, then removed from the API (the kubelet's
  final delete with grace 0).
- Cluster DNS (tests/kuberay/dns.py) fed from the real EndpointSlices (svcdns.py).
- Every container gets KUBERNETES_SERVICE_HOST/PORT (the kubelet's service links) unless its env sets them:
  the `kubernetes` Service's endpoint from its EndpointSlice (the API server on the control plane's link,
  cluster.py), not the ClusterIP, which nothing routes here.
"""

import datetime
import threading
import time

from tests.k8s import api, svcdns
from tests.k8s.podspec import ApiObjects, api_service_env, plan_of
from tests.kuberay import kubelet


def now():
    return datetime.datetime.now(datetime.timezone.utc)


def stamp(t=None):
    return (t or now()).strftime("%Y-%m-%dT%H:%M:%SZ")


class NodeAgent(kubelet.Kubelet):
    """`nodes` Nodes of the API server behind `client`; runs what the scheduler binds to them in namespace
    `namespace`. close() deletes the Nodes' pods' containers, the network and the DNS."""

    CAPACITY = {"cpu": "4", "memory": "16Gi", "pods": "110", "ephemeral-storage": "50Gi"}

    def __init__(self, client, tag, subnet, workdir, nodes=3, namespace="default", kubelet_version="v1.35.4"):
        self.client, self.version = client, kubelet_version
        self.nodes = [f"{tag}-node-{i}" for i in range(1, nodes + 1)]
        self.namespace = namespace
        self.bound = {}  # pod name -> node
        self.uids = {}  # pod name -> uid (a pod recreated under the same name is a new pod)
        self.pushed = {}  # pod name -> the last status sent
        self.errors = []
        self.service_env = {}  # KUBERNETES_SERVICE_HOST/PORT, from the EndpointSlices (_sync_dns)
        self._stop = threading.Event()
        super().__init__(ApiObjects(client, namespace), tag, subnet, workdir)
        for name in self.nodes:
            self._register(name)
        self._loop = threading.Thread(target=self._run, daemon=True)
        self._loop.start()

    # --- nodes ------------------------------------------------------------------------------------
    def _register(self, name):
        self.client.request("POST", "/api/v1/nodes", {
            "apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": {
                "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"}}})
        self._node_status(name)
        self.client.request("POST", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", {
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": name, "namespace": "kube-node-lease"},
            "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": self._micro()}})

    @staticmethod
    def _micro():
        return now().strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def _node_status(self, name):
        t = stamp()
        conditions = [{"type": kind, "status": "False", "reason": f"KubeletHasSufficient{kind[:-8]}",
                       "lastHeartbeatTime": t, "lastTransitionTime": t}
                      for kind in ("MemoryPressure", "DiskPressure", "PIDPressure")]
        conditions.append({"type": "Ready", "status": "True", "reason": "KubeletReady",
                           "message": "seedcore-boot test node agent", "lastHeartbeatTime": t,
                           "lastTransitionTime": t})
        self.client.merge_patch(f"/api/v1/nodes/{name}/status", {"status": {
            "capacity": self.CAPACITY, "allocatable": self.CAPACITY, "conditions": conditions,
            "addresses": [{"type": "InternalIP", "address": f"{self.subnet}.1"}, {"type": "Hostname", "address": name}],
            "nodeInfo": {"kubeletVersion": self.version, "operatingSystem": "linux", "architecture": "amd64",
                         "containerRuntimeVersion": "docker://seedcore-test", "kubeProxyVersion": ""}}})

    def _heartbeat(self):
        for name in self.nodes:
            self.client.merge_patch(f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{name}",
                                    {"spec": {"renewTime": self._micro()}})

    # --- the loop ---------------------------------------------------------------------------------
    def _run(self):
        next_beat = 0.0  # a Node's Lease is renewed every 10 s, as the kubelet does
        while not self._stop.is_set():
            try:
                if time.monotonic() > next_beat:
                    self._heartbeat()
                    next_beat = time.monotonic() + 10
                self._sync_dns()  # first: a pod started in this round gets the API server's address
                self._sync_pods()
            except Exception as exc:  # noqa: BLE001 (kept for the test to show; the loop goes on)
                self.errors.append(f"{stamp()} {exc!r}")
            self._stop.wait(1.0)

    def _sync_pods(self):
        listed = self.client.get(f"/api/v1/namespaces/{self.namespace}/pods")["items"]
        seen = set()
        for pod in listed:
            meta, node = pod["metadata"], pod["spec"].get("nodeName")
            if node not in self.nodes:
                continue
            name = meta["name"]
            seen.add(name)
            if name not in self.pods or self.uids.get(name) != meta["uid"]:
                if name in self.pods:  # the same name, a new pod: the old one is gone
                    self.pods.pop(name)
                self.uids[name], self.bound[name] = meta["uid"], node
                self.pushed.pop(name, None)
                self.run(plan_of(pod, self.client, self.service_env))
            running = self.pods[name]
            if meta.get("deletionTimestamp"):
                if not running.deleting:
                    threading.Thread(target=self._delete, args=(running, meta["uid"]), daemon=True).start()
                continue
            self._push_status(pod, running)
        for name in [n for n in self.pods if n not in seen]:  # deleted with grace 0 by someone else
            running = self.pods.pop(name)
            if not running.deleting:
                threading.Thread(target=self.delete, args=(running,), daemon=True).start()

    def _delete(self, running, uid):
        self.delete(running)
        path = f"/api/v1/namespaces/{self.namespace}/pods/{running.plan.name}"
        self.client.request("DELETE", path, {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0,
                                             "preconditions": {"uid": uid}})

    def _push_status(self, pod, running):
        status = pod_status(running, self.subnet, pod["status"].get("startTime") or stamp())
        if status != self.pushed.get(running.plan.name):
            try:
                self.client.merge_patch(f"/api/v1/namespaces/{self.namespace}/pods/{running.plan.name}/status",
                                        {"status": status})
            except api.ApiError as e:
                if e.status != 404:  # deleted since the list: the next round sees it gone
                    raise
            self.pushed[running.plan.name] = status

    def _sync_dns(self):
        found = svcdns.slices(self.client)
        self.service_env = api_service_env(found)
        records = svcdns.records(found)
        with self._lock:
            self._write_records(records)

    def update_services(self):
        """The emulation's kubelet writes the DNS itself on every readiness change; here readiness goes to
        the API (the loop), and the DNS follows the EndpointSlices."""

    def close(self):
        self._stop.set()
        self._loop.join(timeout=30)
        super().close()


def _state(exit_code, exited, running, start_time):
    if exited and exit_code is not None:
        return {"terminated": {"exitCode": exit_code, "reason": "Completed" if exit_code == 0 else "Error"}}
    if running:
        return {"running": {"startedAt": start_time}}
    return {"waiting": {"reason": "PodInitializing"}}


def pod_status(running, subnet, start_time):
    """The status subresource as the kubelet reports it (phase, conditions, IPs, container states, sorted by
    container name as kubelet_pods.go does: a head's `autoscaler` comes before `ray-head`)."""
    plan = running.plan
    exited = running.exited.is_set()
    code = running.exit_code
    if exited and (plan.restart_policy == "Never" or (plan.restart_policy == "OnFailure" and code == 0)
                   or running.failure):
        phase = "Succeeded" if code == 0 and not running.failure else "Failed"
    else:
        phase = "Running" if running.running else "Pending"
    sidecars = [running.sidecars.get(c.name) for c in plan.containers[1:]]
    # A container without a readiness probe (the sidecars here) is ready while it runs.
    ready_of = [running.ready and phase == "Running"] + [bool(s and s.running) for s in sidecars]
    ready = all(ready_of)

    def cond(kind, ok):
        return {"type": kind, "status": "True" if ok else "False", "lastProbeTime": None,
                "lastTransitionTime": start_time}

    states = [_state(code, exited, running.running, start_time)] + [
        _state(s.exit_code, s.exit_code is not None, True, start_time) if s else _state(None, False, False, None)
        for s in sidecars]
    ids = [running.container] + [s.container if s else "" for s in sidecars]
    restarts = [running.restarts] + [s.restarts if s else 0 for s in sidecars]
    statuses = sorted(({"name": c.name, "image": c.image, "imageID": "", "ready": ok,
                        "containerID": f"docker://{cid}" if cid else "", "started": "running" in state,
                        "restartCount": n, "state": state}
                       for c, ok, state, cid, n in zip(plan.containers, ready_of, states, ids, restarts)),
                      key=lambda x: x["name"])
    status = {
        "phase": phase, "hostIP": f"{subnet}.1", "hostIPs": [{"ip": f"{subnet}.1"}], "startTime": start_time,
        "conditions": [cond("PodScheduled", True), cond("Initialized", running.running),
                       cond("ContainersReady", ready), cond("Ready", ready)],
        "containerStatuses": statuses,
    }
    if running.running or exited:
        status["podIP"], status["podIPs"] = running.ip, [{"ip": running.ip}]
    return status
