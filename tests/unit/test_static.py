"""Static checks of the container files: the compose files against the compose-spec schema, the
Dockerfiles with hadolint at warning level, every shell script with shellcheck."""

import glob
import os
import shutil
import subprocess
import sys

from tests import REPO
from tests.skips import need

SCRIPTS = sorted(glob.glob(f"{REPO}/docker/*.sh") + glob.glob(f"{REPO}/tests/docker/*.sh") + [f"{REPO}/.ci/run"])
DOCKERFILES = sorted([f"{REPO}/docker/Dockerfile"] + glob.glob(f"{REPO}/tests/docker/*.Dockerfile"))
COMPOSE = [f"{REPO}/docker/{name}" for name in ("docker-compose.yml", "ray-workers.yml", "docker-compose.tls.yml",
                                                 "ray-workers.tls.yml", "ray-head-host.yml", "ray-workers-host.yml")]


def tool(name):
    """The tool beside this Python (pip-installed by the test extras) or on PATH; CI must have it."""
    path = os.path.join(os.path.dirname(sys.executable), name)
    found = path if os.path.exists(path) else shutil.which(name)
    need(found, f"{name} is not installed")
    return found


def run(argv):
    out = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


def test_compose_files_match_the_compose_spec():
    run([tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", *COMPOSE])


def test_dockerfiles_pass_hadolint_at_warning_level():
    run([tool("hadolint"), "--failure-threshold", "warning", "--no-color", *DOCKERFILES])


def test_shell_scripts_pass_shellcheck():
    assert len(SCRIPTS) >= 5
    run([tool("shellcheck"), *SCRIPTS])
