"""The fixtures of every scenario under the real KubeRay operator: the binaries and the project's image once,
then per test class a control plane of its own and a node agent on the pods' network `AGENT` names."""

import pytest

from tests.dockerhosts import engine_or_skip
from tests.k8s import cluster, scenario
from tests.kuberay.inpod import build_image


@pytest.fixture(scope="package")
def bins():
    found = scenario.binaries_or_skip()
    engine_or_skip()
    build_image()
    return found


@pytest.fixture(scope="class")
def plane(bins, request):
    """One control plane per scenario: each scenario's pods are the only ones its nodes run."""
    cp = cluster.ControlPlane(bins, request.cls.AGENT[1], kuberay=getattr(request.cls, "KUBERAY", None))
    try:
        yield cp
    finally:
        cp.close()


@pytest.fixture(scope="class")
def node_agent(plane, tmp_path_factory, request):
    found = scenario.linked_agent(plane, *request.cls.AGENT, tmp_path_factory)
    try:
        yield found
    finally:
        found.close()
