"""`seedcore-boot head` exactly as a newcomer runs it: in the machine's own root namespace (where the Docker
engine has made docker0, down between containers and keeping its fe80:: address), default settings, default
temp dir, the sample Serve app; then `seedcore-boot status`, SIGTERM, and nothing of it left.

It binds the root namespace's ports (6379, 8265, 8000, ...), which the container tests' compose stacks
publish too: run it alone (`flock /run/seedcore-docker.lock python -m pytest tests/e2e/test_newcomer.py`;
CI runs the tests one after another)."""

import os
import signal
import subprocess
import sys

import psutil
import pytest

from seedcore_boot.host import leftovers
from tests.dockerhosts import engine_or_skip
from tests.nshost import Proc, wait_for

pytestmark = pytest.mark.e2e
BIN = os.path.dirname(sys.executable)


def newcomer_env():
    """A login shell's environment with the venv activated: nothing of the test runner's."""
    return {"PATH": f"{BIN}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root",
            "LANG": "C.UTF-8", "RAY_USAGE_STATS_ENABLED": "0"}


def seedcore_boot(*args, timeout=120):
    out = subprocess.run([os.path.join(BIN, "seedcore-boot"), *args], env=newcomer_env(), capture_output=True,
                         text=True, timeout=timeout)
    assert "Traceback" not in out.stdout + out.stderr, out.stdout + out.stderr
    return out


def of_node(supervisor):
    """Live processes marked as this supervisor's node (leftovers.py: every Ray process inherits the mark)."""
    found = []
    for p in psutil.process_iter():
        got = leftovers.marks(p)
        try:
            if got and got[1] == supervisor and p.status() != psutil.STATUS_ZOMBIE:
                found.append(p)
        except psutil.Error:
            continue
    return found


def test_a_newcomers_first_head_on_a_machine_with_docker():
    engine_or_skip()  # the engine makes docker0 in this namespace, as on any machine that runs Docker
    assert "docker0" in psutil.net_if_addrs(), "the Docker engine runs but there is no docker0 here"
    free = seedcore_boot("check-ports")
    assert free.returncode == 0, f"the root namespace's ports are taken (run under the docker lock):\n{free.stdout}"

    proc = Proc(subprocess.Popen([os.path.join(BIN, "seedcore-boot"), "head"], env=newcomer_env(), cwd="/",
                                 stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    try:
        proc.wait_line("head ready", timeout=300)
        assert "node address " in proc.output and "Traceback" not in proc.output
        status = seedcore_boot("status")
        assert status.returncode == 0 and status.stdout.startswith("head (pid "), status.stdout
        assert of_node(proc.popen.pid)
        proc.popen.send_signal(signal.SIGTERM)
        assert proc.wait(120) == 0, proc.output_tail()
    finally:
        proc.kill()
    assert "Traceback" not in proc.output, proc.output_tail()
    assert "head stopped" in proc.output
    wait_for("nothing of the node left", lambda: not of_node(proc.popen.pid), timeout=30)
    after = seedcore_boot("check-ports")
    assert after.returncode == 0, after.stdout
    assert seedcore_boot("status").returncode == 1
