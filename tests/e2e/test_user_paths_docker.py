"""The one-machine compose stack as a newcomer meets it: README's Docker quick start typed as written (on a
machine where the image was never built), docs/docker.md's checks, then what people do on the running head
through `docker exec` (#24: a driver, `ray status`, `serve status`, `ray job submit`, `seedcore-boot status`).

The stack is brought up once for the module, by the README's own lines; the stand-in images and the engine
are tests/e2e/test_docker.py's (tests/docker/).
"""

import json
import os
import subprocess
import sys

import pytest

from tests import docblocks
from tests.dockerhosts import wait_for
from tests.e2e import userpaths
from tests.e2e.test_docker import DOCKER_DIR, HEAD, IMAGE, _engine_or_skip, logs, sh, stop_all

pytestmark = pytest.mark.e2e

ENV = dict(os.environ, RAY_USAGE_STATS_ENABLED="0")
DEADLINE = 300  # only a hang reaches it: the first `up` builds the image


def until_ok(command, check, what):
    """Type `command` again until its result passes `check` (a user waits for the head the same way)."""
    last = {}

    def once():
        last["out"] = docblocks.run(command, DOCKER_DIR, ENV, timeout=60)
        return last["out"].returncode == 0 and check(last["out"].stdout)
    try:
        wait_for(what, once, DEADLINE, step=2)
    except AssertionError:
        out = last.get("out")
        raise AssertionError(f"{command}: {what} never came: {out and (out.stdout + out.stderr)[-2000:]}")
    return last["out"]


def in_head(argv, timeout=180):
    return subprocess.run(["docker", "exec", HEAD, *argv], capture_output=True, text=True, timeout=timeout)


def targets_up(text, count):
    active = json.loads(text)["data"]["activeTargets"]
    return len(active) == count and all(t["health"] == "up" for t in active)


@pytest.fixture(scope="module")
def quickstart():
    """README.md's Docker quick start, each line as typed from docker/, its commented result checked."""
    _engine_or_skip()
    stop_all()
    sh("docker", "rmi", "-f", IMAGE, check=False)  # a newcomer's machine: the first `up` builds the image
    lines = docblocks.commands(docblocks.block("README.md", "test_readme_docker_quick_start"))
    assert [l.split("#")[0].split()[:3] for l in lines] == [
        ["docker", "compose", "--profile"], ["docker", "compose", "-f"], ["curl", "localhost:8000/health"],
        ["curl", "-s", "localhost:9090/api/v1/targets"], ["./stop-all.sh"]], lines
    seen = {}
    try:
        for line in lines[:2]:
            out = docblocks.run(line, DOCKER_DIR, ENV, timeout=900)
            assert out.returncode == 0, f"{line}\n{out.stdout}\n{out.stderr}"
        seen["health"] = until_ok(lines[2], lambda out: '"ok"' in out, "the sample Serve app answering")
        # Prometheus: every Ray target up, the head's three and the three workers' exports.
        seen["targets"] = until_ok(lines[3], lambda out: targets_up(out, 6), "6 Prometheus targets up")
        wait_for("4 active nodes", lambda: userpaths.active_nodes(in_head(["ray", "status"]).stdout) == 4, 120)
        yield seen
    finally:
        out = docblocks.run(lines[4], DOCKER_DIR, ENV, timeout=300)
        left = sh("docker", "ps", "-aq", "--filter", "label=com.docker.compose.project=seedcore").stdout.split()
        stop_all()
        assert out.returncode == 0 and left == [], f"{out.stdout}\n{out.stderr}\nleft: {left}"


def test_readme_docker_quick_start(quickstart):
    assert json.loads(quickstart["health"].stdout)["status"] == "ok"
    assert targets_up(quickstart["targets"].stdout, 6)


def test_docker_md_quick_start(quickstart):
    """docs/docker.md's block: the same start, and the checks it lists, each line as typed."""
    lines = docblocks.commands(docblocks.block("docs/docker.md", "test_docker_md_quick_start"))
    readme = docblocks.commands(docblocks.block("README.md", "test_readme_docker_quick_start"))
    starts = [l for l in lines if "up -d" in l or "stop-all" in l]
    assert [l.split("#")[0].strip() for l in starts] == [l.split("#")[0].strip() for l in readme
                                                         if "up -d" in l or "stop-all" in l]  # run by the fixture
    expect = {"docker logs seedcore-ray-head": "head ready in", "curl localhost:8080/metrics": "ray_node_",
              "curl localhost:8265/api/version": "2.20.0", "curl localhost:8000/health": '"ok"',
              "docker exec seedcore-ray-head ray status": "", "curl -s localhost:9090/api/v1/targets": '"up"'}
    checks = [l for l in lines if l not in starts]
    assert sorted(l.split("#")[0].strip() for l in checks) == sorted(expect), checks
    for line in checks:
        out = docblocks.run(line, DOCKER_DIR, ENV, timeout=120)
        text = out.stdout + out.stderr
        assert out.returncode == 0 and expect[line.split("#")[0].strip()] in text, f"{line}\n{text[-2000:]}"
        if "ray status" in line:
            assert userpaths.active_nodes(out.stdout) == 4, out.stdout  # "# 4 active nodes"
    head_log = logs(HEAD)
    assert "Traceback" not in head_log and "ERROR" not in head_log, head_log[-3000:]


def test_a_driver_through_docker_exec_spreads_its_tasks_over_the_workers(quickstart):
    """The issue's own line first: it crashed on an empty RAY_REDIS_ADDRESS in the container's environment."""
    plain = in_head(["python", "-c", "import ray; ray.init()"])
    assert plain.returncode == 0 and "Traceback" not in plain.stderr, plain.stderr[-3000:]
    nodes = userpaths.check_driver_spreads(in_head)
    head_id = in_head(["python", "-c", "import ray; ray.init(); print(ray.get_runtime_context().get_node_id())"])
    assert set(nodes) - {head_id.stdout.strip().splitlines()[-1]}, f"no task ran on a worker: {nodes}"


def test_ray_status_serve_status_and_seedcore_boot_status_in_the_head(quickstart):
    userpaths.check_ray_status(in_head, 4)
    userpaths.check_serve_status(in_head)
    userpaths.check_seedcore_status(in_head)


def test_ray_job_submit_through_the_published_dashboard(quickstart):
    """From the machine, with its own `ray` (the venv's), to the dashboard compose publishes on 127.0.0.1."""
    ray_cli = os.path.join(os.path.dirname(sys.executable), "ray")

    def run(argv):
        return subprocess.run([ray_cli, *argv[1:]], capture_output=True, text=True, timeout=300, env=ENV)
    userpaths.check_job_submit(run)
    userpaths.check_job_submit(in_head)  # and from a shell in the head, as `docker exec` users do
