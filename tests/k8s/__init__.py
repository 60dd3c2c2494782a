"""The real KubeRay operator on a real Kubernetes control plane, for tests/e2e/test_kuberay_real.py: build.sh builds
them from the Go module proxy, cluster.py runs them on a throwaway host, agent.py is the node agent that runs
their pods (the kubelet emulation of tests/kuberay/), api.py the client, certs.py the keys."""
