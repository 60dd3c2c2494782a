"""In the KubeRay emulation (tests/kuberay/: the manifests' pods as KubeRay v1.1 and the kubelet run them, in
the real engine): what people do on a running head through `kubectl exec` (#24), here `docker exec` into the
head pod's Ray container, which is what `kubectl exec` reaches. deploy/kuberay/raycluster.yaml (head and two
workers), then raycluster-tls.yaml (head and a worker) with `seedcore-boot tls env` before the driver. Each
cluster is up once for its class and gone before the next; raycluster.yaml's is test_kuberay.py's `rc`, up
once for both modules (tests/sharedstacks.py: this class runs right before that module's)."""

import subprocess
import sys

import pytest

from tests.e2e import userpaths
from tests.e2e.test_kuberay import cluster, engine, rc  # noqa: F401  (engine, rc: fixtures, used by name)
from tests.k8s import kubectl

pytestmark = pytest.mark.e2e


def shell(pod):
    return lambda argv: pod.exec(argv, timeout=300)


@pytest.fixture(scope="class")
def with_tls(engine, tmp_path_factory):  # noqa: F811
    ca = tmp_path_factory.mktemp("ca")
    out = subprocess.run([sys.executable, "-m", "seedcore_boot", "tls", "init", str(ca)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr

    def with_secret(docs):  # what `kubectl create secret generic seedcore-ca --from-file=...` makes
        return docs + [kubectl.secret("seedcore-ca", {n: str(ca / n) for n in ("ca.crt", "ca.key")})]

    op, k = cluster(tmp_path_factory, "raycluster-tls.yaml", "up2", "10.211.22", with_secret)
    try:
        head, worker = k.run(op.head()), k.run(op.worker())
        head.wait_ready(300)
        worker.wait_ready(400)
        yield head, worker
    finally:
        k.close()


class TestRayCluster:
    def test_a_driver_in_the_head_pod_spreads_over_the_workers(self, rc):  # noqa: F811
        _, _, head, _ = rc
        # Each worker has one CPU, and the sample app's replica holds one of them (raycluster.yaml): tasks that
        # need a CPU fit on the other worker only. Tasks that need none go to every node, SPREAD.
        nodes = userpaths.check_driver_spreads(shell(head), cpus=0)
        assert len(nodes) == 3, nodes

    def test_ray_status_serve_status_a_job_and_seedcore_boot_status(self, rc):  # noqa: F811
        _, _, head, _ = rc
        userpaths.check_ray_status(shell(head), 3)
        userpaths.check_serve_status(shell(head))
        userpaths.check_job_submit(shell(head))
        userpaths.check_seedcore_status(shell(head))


class TestTlsRayCluster:
    def test_tls_env_then_a_driver_ray_status_and_a_job(self, with_tls):
        head, _ = with_tls
        tls_shell = lambda argv: head.exec(userpaths.in_tls_shell(argv), timeout=300)  # noqa: E731
        nodes = userpaths.check_driver_spreads(tls_shell)
        assert len(nodes) == 2, nodes
        userpaths.check_ray_status(tls_shell, 2)
        userpaths.check_job_submit(tls_shell)
        userpaths.check_serve_status(shell(head))
        userpaths.check_seedcore_status(shell(head))
