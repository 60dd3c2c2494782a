"""Across machines (docker/ray-head-host.yml, ray-workers-host.yml on emulated machines, each with its own
engine): docs/docker-hosts.md's checks on the head's machine A, typed as written, then what people do on the
running head through `docker exec` (#24). The topology is tests/e2e/test_docker_hosts.py's, brought up once
for both modules (tests/sharedstacks.py; these checks run first, before that module stops parts of it): A the
head (no CPU), B and C a worker each."""

import json
import os
import subprocess
import sys

import pytest

from tests import docblocks
from tests.dockerhosts import wait_for
from tests.e2e import userpaths
from tests.e2e.test_docker_hosts import NODE, cluster, machines  # noqa: F401  (fixtures, used by name)

pytestmark = pytest.mark.e2e


def on(machine):
    """A shell on `machine`: its network namespace, its engine (DOCKER_HOST), from docker/."""
    env = dict(os.environ, DOCKER_HOST=machine.sock, RAY_USAGE_STATS_ENABLED="0",
               PATH=f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}")

    def run(argv, timeout=300):
        return subprocess.run(["nsenter", f"--net={machine.netns}", *argv], cwd=docblocks.REPO + "/docker", env=env,
                              capture_output=True, text=True, timeout=timeout)
    return run


def in_node(machine):
    shell = on(machine)
    return lambda argv: shell(["docker", "exec", NODE, *argv])


def test_docker_hosts_md_commands(cluster):  # noqa: F811
    a, b, c = cluster
    lines = docblocks.commands(docblocks.block("docs/docker-hosts.md", "test_docker_hosts_md_commands"))
    assert [l.split("#")[0].split()[:2] for l in lines] == [["docker", "exec"], ["curl", "-s"],
                                                           ["curl", "127.0.0.1:8000/health"]]
    shell = on(a)
    status = shell(["bash", "-c", lines[0]])
    assert status.returncode == 0 and userpaths.active_nodes(status.stdout) == 3, status.stdout + status.stderr

    def targets():
        out = shell(["bash", "-c", lines[1]])
        active = json.loads(out.stdout)["data"]["activeTargets"] if out.returncode == 0 else []
        ups = {t["labels"]["instance"].split(":")[0] for t in active if t["health"] == "up"}
        return {a.address, b.address, c.address} <= ups
    wait_for("every machine's node up in Prometheus", targets, 120, step=2)
    health = shell(["bash", "-c", lines[2]])
    assert health.returncode == 0 and json.loads(health.stdout)["status"] == "ok", health.stdout + health.stderr


def test_a_driver_in_the_heads_container_spreads_over_both_workers_machines(cluster):  # noqa: F811
    a, b, c = cluster
    nodes = userpaths.check_driver_spreads(in_node(a))  # the head offers no CPU: every task ran on B or C
    assert len(nodes) == 2, nodes


def test_ray_status_serve_status_seedcore_boot_status_and_a_job(cluster):  # noqa: F811
    a, _, _ = cluster
    userpaths.check_ray_status(in_node(a), 3)
    userpaths.check_serve_status(in_node(a))
    userpaths.check_seedcore_status(in_node(a))
    userpaths.check_job_submit(in_node(a))  # the dashboard on A's loopback (ray-head-host.yml keeps it there)
    ray_cli = os.path.join(os.path.dirname(sys.executable), "ray")
    userpaths.check_job_submit(lambda argv: on(a)([ray_cli, *argv[1:]]))  # from A's own shell
