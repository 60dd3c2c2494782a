"""The node agent's pure parts: an API Pod read as the pod the emulation's kubelet runs, and the status it
reports back. (The agent against the real API server: tests/e2e/test_kuberay_real.py.)"""

from types import SimpleNamespace

from tests.k8s import agent
from tests.kuberay import kubelet, operator

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
    plan = agent.plan_of(POD, client=None)
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
    pod = kubelet.RunningPod(SimpleNamespace(tag="t"), agent.plan_of(POD, client=None), "10.9.0.10")
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
    env = agent.api_service_env(SLICES)
    assert env == {"KUBERNETES_SERVICE_HOST": "10.9.0.3", "KUBERNETES_SERVICE_PORT": "6443",
                   "KUBERNETES_SERVICE_PORT_HTTPS": "6443"}
    assert agent.api_service_env(SLICES[:1]) == {}  # before the API server wrote its endpoint
    pod = {**POD, "spec": {**POD["spec"], "containers": [{**POD["spec"]["containers"][0], "env": [
        {"name": "KUBERNETES_SERVICE_PORT", "value": "443"}]}]}}
    plan = agent.plan_of(pod, client=None, service_env=env)
    assert plan.containers[0].env == {**env, "KUBERNETES_SERVICE_PORT": "443"}  # the pod's own value wins
    assert plan.init[0].env["KUBERNETES_SERVICE_HOST"] == "10.9.0.3"  # init containers get it too
