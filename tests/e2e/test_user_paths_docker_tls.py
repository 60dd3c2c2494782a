"""The TLS compose variant as docs/security.md gives it (its "Compose" block typed as written: the CA made in
docker/tls, the head and three workers with docker-compose.tls.yml and ray-workers.tls.yml), then what people
do on the running head through `docker exec`, after `eval "$(seedcore-boot tls env)"` where Ray needs the
node's certificate (#24). The stack is brought up once for the module by the page's own lines."""

import os
import shutil
import subprocess
import sys

import pytest

from tests import docblocks
from tests.dockerhosts import wait_for
from tests.e2e import userpaths
from tests.e2e.test_docker import DOCKER_DIR, HEAD, _engine_or_skip, healthy, logs, sh, stop_all

pytestmark = pytest.mark.e2e

ENV = dict(os.environ, RAY_USAGE_STATS_ENABLED="0",  # seedcore-boot: the one this suite runs
           PATH=f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}")
CA_DIR = os.path.join(DOCKER_DIR, "tls")  # the page's `seedcore-boot tls init tls`, from docker/


def in_head(argv, timeout=180):
    return subprocess.run(["docker", "exec", HEAD, *argv], capture_output=True, text=True, timeout=timeout)


def workers():
    return sh("docker", "ps", "-q", "--filter", "label=com.docker.compose.project=seedcore",
              "--filter", "label=com.docker.compose.service=ray-worker").stdout.split()


@pytest.fixture(scope="module")
def tls_stack():
    _engine_or_skip()
    stop_all()
    assert not os.path.exists(CA_DIR), f"{CA_DIR} exists: a CA of someone's own; this test would replace it"
    lines = docblocks.commands(docblocks.block("docs/security.md", "test_security_md_compose"))
    assert lines[0] == "cd docker" and len(lines) == 4, lines
    try:
        # One shell, as typed: `cd docker` holds for the lines after it.
        out = subprocess.run(["bash", "-c", "\n".join(["set -e"] + [docblocks.typed(l) for l in lines])],
                             cwd=docblocks.REPO, env=ENV, capture_output=True, text=True, timeout=1200)
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
        wait_for("the TLS head healthy", lambda: healthy(HEAD), 300)
        wait_for("three TLS workers healthy", lambda: len(workers()) == 3 and all(healthy(w) for w in workers()),
                 300)
        yield lines
    finally:
        stop_all()
        shutil.rmtree(CA_DIR, ignore_errors=True)


def tls_shell(argv):
    return in_head(userpaths.in_tls_shell(argv))


def test_security_md_compose(tls_stack):
    """What the page promises of these lines: mutual TLS on every node, and `ray status` in the head's
    container after `tls env`, as the page and docker-compose.tls.yml write it."""
    for container in [HEAD] + workers():
        assert "mutual TLS on every gRPC port" in logs(container), logs(container)[-2000:]
    typed = subprocess.run(["docker", "exec", HEAD, "sh", "-c", 'eval "$(seedcore-boot tls env)" && ray status'],
                           capture_output=True, text=True, timeout=120)
    assert typed.returncode == 0 and userpaths.active_nodes(typed.stdout) == 4, typed.stdout + typed.stderr
    assert oct(os.stat(os.path.join(CA_DIR, "ca.key")).st_mode & 0o777) == "0o600"


def test_tls_env_then_a_driver_spreads_its_tasks(tls_stack):
    userpaths.check_driver_spreads(tls_shell)


def test_serve_status_a_job_and_seedcore_boot_status_with_tls_on(tls_stack):
    userpaths.check_serve_status(in_head)  # the dashboard's HTTP: no certificate needed
    userpaths.check_job_submit(tls_shell)  # its driver runs on the head, under the node's TLS environment
    userpaths.check_seedcore_status(in_head)  # probes over HTTP and TCP: needs nothing (docs/security.md)
