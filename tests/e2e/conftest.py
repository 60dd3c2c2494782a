"""The order of the e2e tests and the stacks they share (tests/sharedstacks.py)."""

import pytest

from tests import sharedstacks

# README's Docker quick start removes the image, as on a newcomer's machine, and its first `up` builds it: run
# first, on a fresh machine that is the run's one build from nothing, and every later build (compose --build,
# the emulated machines', KubeRay's) finds its layers cached. Run later (alphabetically), its `docker rmi` only
# untagged what test_docker.py had built (the emulated machines' tag holds the same image) and its `up` built
# from that cache: no newcomer's build at all.
FIRST = "tests/e2e/test_user_paths_docker.py"


def pytest_collection_modifyitems(items):
    first = [i for i in items if i.nodeid.split("::", 1)[0] == FIRST]
    if first:
        items[:] = first + [i for i in items if i not in first]
    sharedstacks.user_paths_first(items)  # test_docker_hosts.py's topology, test_kuberay.py's RayCluster


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item, nextitem):
    sharedstacks.close_unused(nextitem)


def pytest_sessionfinish(session):
    sharedstacks.close_unused(None)
