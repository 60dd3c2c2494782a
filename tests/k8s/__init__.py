"""The real KubeRay operator on a real Kubernetes control plane, for tests/e2e/kuberay_real/ and
test_kuberay_kubelet.py: build.sh (and kubelet.sh, sharing gomodule.sh) builds them from the Go module proxy,
cluster.py runs them on a throwaway host, agent.py is the node agent that runs their pods (the kubelet
emulation of tests/kuberay/, each pod made from the API by podspec.py), node.py a node of the real kubelet,
svcdns.py the cluster DNS both feed from the EndpointSlices, scenario.py what every scenario does with them,
api.py the client (podexec.py its exec), certs.py the keys."""
