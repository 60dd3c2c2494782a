"""docker/ in a real Docker engine: the seed's own checks, run the way a user runs them (compose v1, which
reads the same files as v2), against stand-ins of the upstream images built offline (tests/docker/).

The engine and the stand-ins come from tests/docker/engine.sh and standins.sh (both idempotent; .ci/run
runs them first). Every request goes to the host's loopback, where compose publishes the ports.
"""

import json
import os
import re
import subprocess
import time
import urllib.request

import pytest

from tests import REPO
from tests.dockerhosts import engine_or_skip as _engine_or_skip, wait_for

pytestmark = pytest.mark.e2e

DOCKER_DIR = os.path.join(REPO, "docker")
HEAD = "seedcore-ray-head"
PROJECT = "seedcore"
IMAGE = "seedcore-boot/ray:2.20.0"
CORE_AND_RAY = ("-f", "docker-compose.yml", "--profile", "core", "--profile", "ray")


def sh(*argv, timeout=300, check=True, cwd=DOCKER_DIR):
    out = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if check:
        assert out.returncode == 0, f"{' '.join(argv)} -> {out.returncode}\n{out.stdout}\n{out.stderr}"
    return out


def inspect(container, fmt):
    return sh("docker", "inspect", "--format", fmt, container, check=False).stdout.strip()


def healthy(container):
    return inspect(container, "{{.State.Health.Status}}") == "healthy"


def workers():
    return sorted(sh("docker", "ps", "-q", "--filter", f"label=com.docker.compose.project={PROJECT}",
                     "--filter", "label=com.docker.compose.service=ray-worker").stdout.split())


def active_nodes():
    out = sh("docker", "exec", HEAD, "ray", "status", check=False, timeout=60).stdout
    block = out.split("Active:", 1)[-1].split("Pending:", 1)[0] if "Active:" in out else ""
    return len(re.findall(r"^\s*1 node_", block, re.M))


def get(url, timeout=5):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, ""
    except OSError as exc:
        return 0, str(exc)


def ip_of(container):
    return inspect(container, "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}")


def logs(container, since=None):
    """The container's output (every restart's), or what it said from `since` (a Unix time) on."""
    out = sh("docker", "logs", *(["--since", f"{since:.3f}"] if since else []), container, check=False)
    return out.stdout + out.stderr


def stop_all():
    return sh("bash", os.path.join(DOCKER_DIR, "stop-all.sh"), cwd="/", timeout=300)


@pytest.fixture(scope="module")
def stack():
    """`docker/start-all.sh 2`, as docs/docker.md has users run it: core + ray profiles up, the head healthy by
    Docker's own health status, then two workers, which join."""
    _engine_or_skip()
    stop_all()  # nothing of an earlier run may count here
    try:
        out = sh("bash", os.path.join(DOCKER_DIR, "start-all.sh"), "2", cwd="/", timeout=900)
        assert "head healthy, 2 worker(s) starting" in out.stdout, out.stdout + out.stderr
        assert healthy(HEAD)  # the script started the workers only once the head was healthy
        wait_for("two workers healthy", lambda: len(workers()) == 2 and all(healthy(w) for w in workers()), 180)
        wait_for("3 active nodes", lambda: active_nodes() == 3, 60)
        yield
    finally:
        stop_all()


def test_the_seeds_checks_pass(stack):
    head_log = logs(HEAD)
    for bad in ("Address already in use", "Traceback", "ERROR", "instead of /dev/shm"):
        assert bad not in head_log, f"{bad!r} in docker logs {HEAD}:\n{head_log[-3000:]}"
    # Ray's own logs too: the plasma fallback is logged there as well as on ray start's output.
    grep = sh("docker", "exec", HEAD, "grep", "-rl", "instead of /dev/shm", "/tmp/ray/session_latest/logs",
              check=False)
    assert grep.stdout.strip() == "", grep.stdout
    for worker in workers():
        assert "instead of /dev/shm" not in logs(worker) and "Traceback" not in logs(worker)

    for url, expect in (("http://127.0.0.1:8080/metrics", "ray_"), ("http://127.0.0.1:8265/api/version", "2.20.0"),
                        ("http://127.0.0.1:8000/health", '"status":"ok"')):
        status, body = get(url)
        assert status == 200 and expect in body, (url, status, body[:300])
    assert active_nodes() == 3


def test_prometheus_scrapes_every_ray_target_from_rays_discovery_file(stack):
    head = ip_of(HEAD)
    expected = {f"{head}:8080", f"{head}:44227", f"{head}:44217"} | {f"{ip_of(w)}:8080" for w in workers()}

    def all_up():
        status, body = get("http://127.0.0.1:9090/api/v1/targets")
        if status != 200:
            return None
        targets = {t["labels"]["instance"]: t["health"] for t in json.loads(body)["data"]["activeTargets"]}
        return targets if set(targets) == expected and set(targets.values()) == {"up"} else None

    wait_for(f"Prometheus reporting {sorted(expected)} up", all_up, 90, step=2)


def test_a_killed_component_restarts_the_head_and_the_workers_rejoin(stack):
    since = sh("date", "+%s").stdout.strip()
    before = int(inspect(HEAD, "{{.RestartCount}}"))
    sh("docker", "exec", HEAD, "pkill", "-KILL", "-f", "log_monitor.py")
    wait_for("a restart", lambda: int(inspect(HEAD, "{{.RestartCount}}")) > before, 30, step=0.5)
    died = sh("docker", "events", "--since", since, "--until", str(int(time.time()) + 1), "--filter",
              f"container={HEAD}", "--filter", "event=die", "--format", "{{.Actor.Attributes.exitCode}}").stdout
    assert died.split() == ["1"], died
    # Named either way: our watch sees it first ("Ray component log_monitor"), or `ray start` does and exits
    # ("`ray start` exited with code 1 (log_monitor [exit code=-9])").
    error = [l for l in logs(HEAD).splitlines() if l.startswith("seedcore-boot: error: Ray died:")]
    assert error and "log_monitor" in error[0], logs(HEAD)[-2000:]
    wait_for("the head healthy again", lambda: healthy(HEAD), 180)
    # The workers lose their head and leave as soon as the new head answers as another cluster (exit 1); their
    # restart policy rejoins them.
    wait_for("3 active nodes again", lambda: active_nodes() == 3, 120, step=2)


def test_docker_stop_of_the_head_exits_0_within_the_grace_period(stack):
    t, since = time.monotonic(), time.time()
    sh("docker", "stop", HEAD, timeout=120)
    print(f"docker stop of the head: {time.monotonic() - t:.1f} s")
    # Docker's own grace (10 s) running out would SIGKILL the head: exit code 137, no "head stopped".
    assert inspect(HEAD, "{{.State.ExitCode}}") == "0"
    said = logs(HEAD, since)
    assert "head stopped" in said and "killed after the grace period" not in said, said[-3000:]


def test_stop_all_leaves_no_container_of_the_project(stack):
    stop_all()
    left = sh("docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={PROJECT}").stdout.split()
    assert left == []


def test_an_unwritable_temp_dir_volume_is_one_line_with_the_fix():
    """A named volume on a path the image did not create is root-owned; the image's user cannot write it."""
    _engine_or_skip()
    sh("docker", "volume", "create", "seedcore-test-rootowned")
    try:
        out = sh("docker", "run", "--rm", "--shm-size=256m", "-e", "RAY_USAGE_STATS_ENABLED=0",
                 "-e", "SEEDCORE_BOOT_TEMP_DIR=/mnt/raytmp", "-v", "seedcore-test-rootowned:/mnt/raytmp",
                 IMAGE, "head", check=False, timeout=120)
    finally:
        sh("docker", "volume", "rm", "-f", "seedcore-test-rootowned", check=False)
    text = out.stdout + out.stderr
    assert out.returncode == 1, text
    assert "Traceback" not in text and "ray |" not in text, text  # Ray never started
    errors = [l for l in text.splitlines() if l.startswith("seedcore-boot: error:")]
    assert len(errors) == 1 and "cannot write Ray's temp dir /mnt/raytmp" in errors[0], text
    assert "owned by uid 0" in errors[0] and "uid 1000" in errors[0] and "--temp-dir" in errors[0]


def test_dockers_default_shm_is_refused_with_the_shm_size_to_set():
    _engine_or_skip()
    out = sh("docker", "run", "--rm", "-e", "RAY_USAGE_STATS_ENABLED=0", IMAGE, "head", check=False, timeout=120)
    text = out.stdout + out.stderr
    assert out.returncode == 1 and "Traceback" not in text and "ray |" not in text, text
    assert "/dev/shm has 0.06 GiB free" in text and "--shm-size=" in text, text


def test_one_variable_switches_the_head_to_fault_tolerance():
    """SEEDCORE_REDIS_ADDRESS=redis:6379: the head keeps its state in the core profile's Redis, and a restart
    of its container recovers that cluster."""
    _engine_or_skip()
    stop_all()
    sh("docker", "volume", "rm", "-f", f"{PROJECT}_redis-data", check=False)
    env = dict(os.environ, SEEDCORE_REDIS_ADDRESS="redis:6379")
    try:
        out = subprocess.run(["docker-compose", *CORE_AND_RAY, "up", "-d", "--build"], cwd=DOCKER_DIR, env=env,
                             capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stderr
        wait_for("the head healthy", lambda: healthy(HEAD), 180)
        assert "no earlier cluster in Redis redis:6379 under namespace 'seedcore-ray-head-6379'" in logs(HEAD)
        sh("docker", "restart", HEAD, timeout=60)
        wait_for("the head healthy after its restart", lambda: "recovering cluster state" in logs(HEAD)
                 and healthy(HEAD), 180)
        assert "recovering cluster state from Redis redis:6379, namespace 'seedcore-ray-head-6379'" in logs(HEAD)
    finally:
        stop_all()
        sh("docker", "volume", "rm", "-f", f"{PROJECT}_redis-data", check=False)
