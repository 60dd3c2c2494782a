"""docker/docker-compose.tls.yml and ray-workers.tls.yml in the real engine (#19): the stack's head and two
workers with mutual TLS from one CA given as read-only secrets, run the way a user runs them (compose v1).

This engine is shared with other test runs, and docker-compose.yml names its head container
seedcore-ray-head, publishes on 127.0.0.1 and tags the image seedcore-boot/ray:2.20.0. So this test runs as
its own project (COMPOSE_PROJECT_NAME, which also names the network and volumes), publishes on a loopback
address of its own (SEEDCORE_PUBLISH_HOST), and adds an override of its own (written next to the CA, never
in docker/) that gives the head container and the image names of this test's. The user's files are used
unchanged; everything the test made is removed at the end, the image tag included.
"""

import json
import os
import re
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.e2e.test_docker import DOCKER_DIR, _engine_or_skip, healthy, inspect, logs, sh, wait_for

pytestmark = pytest.mark.e2e

PROJECT = "seedcore-tlstest"
HEAD = f"{PROJECT}-ray-head"
IMAGE = "seedcore-boot/ray:tlstest"
PUBLISH = "127.0.0.119"  # loopback, and not the 127.0.0.1 other stacks publish on
RAY_UID = 1000  # the image's ray user (tests/docker/ray.Dockerfile, as upstream)
OVERRIDES = {"head": f"services:\n  ray-head:\n    container_name: {HEAD}\n    image: {IMAGE}\n",
             "workers": f"services:\n  ray-worker:\n    image: {IMAGE}\n"}
IN_NODE = 'eval "$(seedcore-boot tls env)" && '  # a driver on a node: the node's own certificate


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    _engine_or_skip()
    work = tmp_path_factory.mktemp("tls-stack")
    ca_dir = work / "tls"
    out = subprocess.run([sys.executable, "-m", "seedcore_boot", "tls", "init", str(ca_dir)], capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stderr
    os.chown(ca_dir / "ca.key", RAY_UID, -1)  # the documented step: the image's user must read the key
    files = {"head": ["-f", "docker-compose.yml", "-f", "docker-compose.tls.yml"],
             "workers": ["-f", "ray-workers.yml", "-f", "ray-workers.tls.yml"]}
    for name, text in OVERRIDES.items():
        (work / f"override-{name}.yml").write_text(text)
        files[name] += ["-f", str(work / f"override-{name}.yml")]
    env = dict(os.environ, COMPOSE_PROJECT_NAME=PROJECT, SEEDCORE_PUBLISH_HOST=PUBLISH, SEEDCORE_TLS_DIR=str(ca_dir))

    def compose(which, *args, timeout=900, check=True):
        out = subprocess.run(["docker-compose", "-p", PROJECT, *files[which], *args], cwd=DOCKER_DIR, env=env,
                             capture_output=True, text=True, timeout=timeout)
        assert not check or out.returncode == 0, f"{args} -> {out.returncode}\n{out.stdout}\n{out.stderr}"
        return out

    def down():
        compose("workers", "down", "-v", "--remove-orphans", check=False)
        compose("head", "--profile", "ray", "down", "-v", "--remove-orphans", check=False)
        left = sh("docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={PROJECT}").stdout.split()
        if left:
            sh("docker", "rm", "-f", *left, check=False)

    down()
    try:
        compose("head", "--profile", "ray", "up", "-d", "--build")
        wait_for("the TLS head healthy", lambda: healthy(HEAD), 240)
        compose("workers", "up", "-d", "--scale", "ray-worker=2")
        yield compose
    finally:
        down()
        sh("docker", "rmi", IMAGE, check=False)


def workers():
    return sorted(sh("docker", "ps", "-q", "--filter", f"label=com.docker.compose.project={PROJECT}",
                     "--filter", "label=com.docker.compose.service=ray-worker").stdout.split())


def active_nodes():
    out = sh("docker", "exec", HEAD, "sh", "-c", IN_NODE + "ray status", check=False, timeout=60).stdout
    block = out.split("Active:", 1)[-1].split("Pending:", 1)[0] if "Active:" in out else ""
    return len(re.findall(r"^\s*1 node_", block, re.M))


def test_the_tls_stack_forms_and_serves(stack):
    wait_for("two TLS workers healthy", lambda: len(workers()) == 2 and all(healthy(w) for w in workers()), 240)
    wait_for("3 active nodes", lambda: active_nodes() == 3, 90, step=2)
    head_log = logs(HEAD)
    issued = next(l for l in head_log.splitlines() if "issued this node's certificate" in l)
    assert "ray-head" in issued, issued  # the name the workers join by (--address ray-head:6379)
    for w in workers():
        assert "mutual TLS on every gRPC port" in logs(w) and "Traceback" not in logs(w)
    with urllib.request.urlopen(f"http://{PUBLISH}:8000/health", timeout=10) as resp:
        assert resp.status == 200 and json.loads(resp.read())["status"] == "ok"

    # Nothing gets in without a certificate: a plain gRPC call from a worker container to the head's GCS.
    plain = sh("docker", "exec", workers()[0], "python", "-c",
               "import grpc\ntry:\n    grpc.insecure_channel('ray-head:6379').unary_unary("
               "'/ray.rpc.NodeInfoGcsService/CheckAlive')(b'', timeout=5); print('answered')\n"
               "except grpc.RpcError as e:\n    print(e.code().name)", check=False)
    assert plain.stdout.strip() == "UNAVAILABLE", plain.stdout + plain.stderr

    # The CA arrives read-only; the issued key is the node user's alone.
    assert sh("docker", "exec", HEAD, "stat", "-c", "%a %U", "/tmp/ray/seedcore-boot/tls/head-6380.key").stdout.split() \
        == ["600", "ray"]
    touch = sh("docker", "exec", HEAD, "sh", "-c", "echo x >> /run/secrets/ray-ca.key", check=False)
    assert touch.returncode != 0
    # `status --json` in the container reports the exposure, the GCS under TLS.
    status = json.loads(sh("docker", "exec", HEAD, "seedcore-boot", "status", "--json").stdout)
    gcs = next(l for l in status["exposure"] if l["port"] == 6379)
    assert gcs["tls"] is True and gcs["process"] == "gcs_server"

    t, since = time.monotonic(), time.time()
    sh("docker", "stop", HEAD, timeout=120)
    print(f"docker stop of the head: {time.monotonic() - t:.1f} s")
    assert inspect(HEAD, "{{.State.ExitCode}}") == "0" and "head stopped" in logs(HEAD, since)  # 137: SIGKILLed
