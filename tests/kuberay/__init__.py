"""KubeRay v1.1.1 and the kubelet, played in the real Docker engine from the shipped manifests (deploy/kuberay/).

operator.py builds each pod as KubeRay would (pure: the generated `ray start`, the injected environment, the
default probes, the wait-gcs-ready init container, /dev/shm); kubelet.py runs those pods as containers with
Kubernetes' semantics (probes at their period and thresholds, readiness gating the Service's DNS name,
restart policy, deletion with SIGTERM then SIGKILL after the grace period); dns.py answers the Services'
names as cluster DNS does. The facts are KubeRay v1.1.1's (ray-project/kuberay, ray-operator/controllers/ray/
common/pod.go and service.go, utils/constant.go), each named where it is used.
"""
