"""The node agent's pure parts: an API Pod read as the pod the emulation's kubelet runs, and the status it
reports back. (The agent against the real API server: tests/e2e/kuberay_real/.)"""

from types import SimpleNamespace

from tests.k8s import agent, podspec
from tests.kuberay import operator, pods

# A worker pod in the shape KubeRay v1.6.2 creates it (common/pod.go setContainerEnvVars: fieldRefs for the
# cluster name, group and pod name), as the API server returns it.
POD = {
    "metadata": {"name": "rc-workers-worker-abcde", "namespace": "ns1", "uid": "u1",
                 "labels": {"ray.io/cluster": "rc", "ray.io/group": "workers", "ray.io/node-type": "worker"}},
    "spec": {
        "nodeName": "n1", "restartPolicy": "Never", "terminationGracePeriodSeconds": 58,
        "securityContext": {"runAsUser": 1000},
        "initContainers": [{"name": "wait-gcs-ready", "image": "img", "command": ["/bin/bash", "-c", "--"],
                            "args": ["loop"], "env": [{"name": "FQ_RAY_IP", "value": "h.ns1.svc.cluster.local"}],
                            "resources": {"limits": {"cpu": "200m", "memory": "256Mi"}}}],
        "containers": [{
            "name": "ray-worker", "image": "img", "command": ["seedcore-boot", "worker"],
            "env": [{"name": "RAY_CLUSTER_NAME", "valueFrom": {"fieldRef": {
                        "fieldPath": "metadata.labels['ray.io/cluster']"}}},
                    {"name": "RAY_NODE_TYPE_NAME", "valueFrom": {"fieldRef": {
                        "fieldPath": "metadata.labels['ray.io/group']"}}},
                    {"name": "RAY_CLOUD_INSTANCE_ID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    {"name": "RAY_CLUSTER_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                    {"name": "MY_POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
            "resources": {"limits": {"cpu": "1", "memory": "3Gi"}},
            "readinessProbe": {"exec": {"command": ["seedcore-boot", "status"]}, "periodSeconds": 5,
                               "failureThreshold": 3, "timeoutSeconds": 5},
            "volumeMounts": [{"name": "shared-mem", "mountPath": "/dev/shm"}]}],
        "volumes": [{"name": "shared-mem", "emptyDir": {"medium": "Memory", "sizeLimit": "1Gi"}}]},
    "status": {},
}


def test_an_api_pod_becomes_the_pod_the_kubelet_emulation_runs():
    plan = podspec.plan_of(POD, client=None)
    c = plan.containers[0]
    assert (plan.name, plan.role, plan.group, plan.restart_policy, plan.grace) == (
        "rc-workers-worker-abcde", "worker", "workers", "Never", 58.0)
    assert c.command == ["seedcore-boot", "worker"] and c.cpu == 1 and c.memory == 3 * 2**30
    assert c.env == {"RAY_CLUSTER_NAME": "rc", "RAY_NODE_TYPE_NAME": "workers",
                     "RAY_CLOUD_INSTANCE_ID": "rc-workers-worker-abcde", "RAY_CLUSTER_NAMESPACE": "ns1",
                     "MY_POD_IP": operator.POD_IP}  # filled in once the kubelet gave the pod its address
    assert c.readiness.command == ["seedcore-boot", "status"] and c.readiness.period == 5
    assert [i.name for i in plan.init] == ["wait-gcs-ready"] and plan.init[0].cpu == 0.2
    assert plan.shm == 2**30 and plan.security == {"runAsUser": 1000}


def _running(**state):
    pod = pods.RunningPod(SimpleNamespace(tag="t"), podspec.plan_of(POD, client=None), "10.9.0.10")
    for k, v in state.items():
        setattr(pod, k, v)
    return pod


def _conditions(status):
    return {c["type"]: c["status"] for c in status["conditions"]}


def test_the_status_reported_follows_the_pod_through_its_life():
    start = "2026-01-01T00:00:00Z"
    pending = agent.pod_status(_running(), "10.9.0", start)
    assert pending["phase"] == "Pending" and "podIP" not in pending
    assert _conditions(pending)["Ready"] == "False"

    ready = agent.pod_status(_running(running=True, ready=True), "10.9.0", start)
    assert ready["phase"] == "Running" and ready["podIP"] == "10.9.0.10" and ready["hostIP"] == "10.9.0.1"
    assert _conditions(ready) == {"PodScheduled": "True", "Initialized": "True", "ContainersReady": "True",
                                  "Ready": "True"}
    assert ready["containerStatuses"][0]["state"] == {"running": {"startedAt": start}}

    done = _running(running=True, exit_code=0)
    done.exited.set()
    assert agent.pod_status(done, "10.9.0", start)["phase"] == "Succeeded"  # restartPolicy Never, exit 0
    failed = _running(running=True, exit_code=1)
    failed.exited.set()
    status = agent.pod_status(failed, "10.9.0", start)
    assert status["phase"] == "Failed" and _conditions(status)["Ready"] == "False"
    assert status["containerStatuses"][0]["state"] == {"terminated": {"exitCode": 1, "reason": "Error"}}


# A head pod in the shape KubeRay v1.6.2 creates it with enableInTreeAutoscaling (common/pod.go
# BuildAutoscalerContainer), after the API server's ServiceAccount admission added its projected volume.
SA_VOLUME = {"name": "kube-api-access-x7k2p", "projected": {"defaultMode": 420, "sources": [
    {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
    {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
    {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1",
                                                                  "fieldPath": "metadata.namespace"}}]}}]}}
HEAD = {
    "metadata": {"name": "rc-head-x2b4c", "namespace": "ns1", "uid": "u2",
                 "labels": {"ray.io/cluster": "rc", "ray.io/group": "headgroup", "ray.io/node-type": "head"}},
    "spec": {
        "serviceAccountName": "rc", "nodeName": "n1",
        "containers": [
            {"name": "ray-head", "image": "img", "command": ["seedcore-boot", "head"]},
            {"name": "autoscaler", "image": "img", "command": ["/bin/bash", "-c", "--"],
             "args": ["ray kuberay-autoscaler --cluster-name $(RAY_CLUSTER_NAME) --cluster-namespace "
                      "$(RAY_CLUSTER_NAMESPACE)"],
             "env": [{"name": "RAY_CLUSTER_NAME", "valueFrom": {"fieldRef": {
                         "fieldPath": "metadata.labels['ray.io/cluster']"}}},
                     {"name": "RAY_CLUSTER_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                     {"name": "RAY_HEAD_POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                     {"name": "KUBERAY_CRD_VER", "value": "v1"}],
             "resources": {"limits": {"cpu": "500m", "memory": "512Mi"}},
             "volumeMounts": [{"name": "ray-logs", "mountPath": "/tmp/ray"},
                              {"name": "kube-api-access-x7k2p", "readOnly": True,
                               "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}]}],
        "volumes": [{"name": "ray-logs", "emptyDir": {}}, SA_VOLUME]},
    "status": {},
}


class _Api:
    """The requests a node agent makes, answered as the API server answers them."""

    def __init__(self):
        self.sent = []

    def get(self, path):
        if path == "/api/v1/namespaces/ns1/pods/rc-head-x2b4c":
            return HEAD
        assert path == "/api/v1/namespaces/ns1/configmaps/kube-root-ca.crt", path
        return {"data": {"ca.crt": "-----BEGIN CERTIFICATE-----\n"}}

    def request(self, method, path, body):
        self.sent.append((method, path, body))
        return {"status": {"token": "eyJ.token"}}


def test_the_service_account_volume_holds_a_token_bound_to_the_pod_the_ca_and_the_namespace():
    api = _Api()
    files = podspec.ApiObjects(api, "ns1").projected(SA_VOLUME["projected"], "rc-head-x2b4c")
    assert files == {"token": "eyJ.token", "ca.crt": "-----BEGIN CERTIFICATE-----\n", "namespace": "ns1"}
    # The kubelet's TokenRequest: the pod's service account, bound to this pod (name and uid).
    assert api.sent == [("POST", "/api/v1/namespaces/ns1/serviceaccounts/rc/token", {
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
        "spec": {"expirationSeconds": 3607, "boundObjectRef": {"kind": "Pod", "apiVersion": "v1",
                                                               "name": "rc-head-x2b4c", "uid": "u2"}}})]


def test_a_head_with_kuberays_autoscaler_reports_both_containers_sorted_by_name():
    plan = podspec.plan_of(HEAD, client=None)
    sidecar = plan.containers[1]
    assert sidecar.env == {"RAY_CLUSTER_NAME": "rc", "RAY_CLUSTER_NAMESPACE": "ns1",
                           "RAY_HEAD_POD_NAME": "rc-head-x2b4c", "KUBERAY_CRD_VER": "v1"}
    assert sidecar.cpu == 0.5 and [m["name"] for m in sidecar.mounts] == ["ray-logs", "kube-api-access-x7k2p"]
    head = pods.RunningPod(SimpleNamespace(tag="t"), plan, "10.9.0.10")
    head.running = head.ready = True
    # The autoscaler not started yet: the pod is not Ready, whatever the Ray container says.
    status = agent.pod_status(head, "10.9.0", "2026-01-01T00:00:00Z")
    assert [c["name"] for c in status["containerStatuses"]] == ["autoscaler", "ray-head"]
    assert _conditions(status)["Ready"] == "False" and status["containerStatuses"][0]["state"] == {
        "waiting": {"reason": "PodInitializing"}}
    head.sidecars["autoscaler"] = SimpleNamespace(running=True, exit_code=None, restarts=1, container="t-a")
    status = agent.pod_status(head, "10.9.0", "2026-01-01T00:00:00Z")
    assert _conditions(status)["Ready"] == "True"
    assert status["containerStatuses"][0] == {
        "name": "autoscaler", "image": "img", "imageID": "", "ready": True, "containerID": "docker://t-a",
        "started": True, "restartCount": 1, "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}


# The `kubernetes` Service's EndpointSlice as kube-apiserver writes it (--advertise-address on the control
# plane's link), next to a Service of the pods'.
SLICES = [
    {"metadata": {"name": "seedcore-head-svc-x1", "namespace": "default",
                  "labels": {"kubernetes.io/service-name": "seedcore-head-svc"}},
     "ports": [{"name": "gcs-server", "port": 6379}], "endpoints": [{"addresses": ["10.9.0.10"]}]},
    {"metadata": {"name": "kubernetes", "namespace": "default", "labels": {"kubernetes.io/service-name": "kubernetes"}},
     "ports": [{"name": "https", "port": 6443, "protocol": "TCP"}],
     "endpoints": [{"addresses": ["10.9.0.3"], "conditions": {"ready": True}}]},
]


def test_pods_are_told_the_api_servers_endpoint_unless_they_set_it():
    env = podspec.api_service_env(SLICES)
    assert env == {"KUBERNETES_SERVICE_HOST": "10.9.0.3", "KUBERNETES_SERVICE_PORT": "6443",
                   "KUBERNETES_SERVICE_PORT_HTTPS": "6443"}
    assert podspec.api_service_env(SLICES[:1]) == {}  # before the API server wrote its endpoint
    pod = {**POD, "spec": {**POD["spec"], "containers": [{**POD["spec"]["containers"][0], "env": [
        {"name": "KUBERNETES_SERVICE_PORT", "value": "443"}]}]}}
    plan = podspec.plan_of(pod, client=None, service_env=env)
    assert plan.containers[0].env == {**env, "KUBERNETES_SERVICE_PORT": "443"}  # the pod's own value wins
    assert plan.init[0].env["KUBERNETES_SERVICE_HOST"] == "10.9.0.3"  # init containers get it too


def test_an_empty_env_value_left_out_of_the_api_object_is_the_empty_string():
    # KubeRay v1.1.1 adds {"name": "REDIS_PASSWORD"} with an empty value (setContainerEnvVars), and the API
    # server leaves an empty `value` out: neither value nor valueFrom.
    pod = {**POD, "spec": {**POD["spec"], "containers": [{**POD["spec"]["containers"][0], "env": [
        {"name": "REDIS_PASSWORD"}, {"name": "A", "value": "x$(REDIS_PASSWORD)y"}]}]}}
    assert podspec.plan_of(pod, client=None).containers[0].env == {"REDIS_PASSWORD": "", "A": "xy"}
