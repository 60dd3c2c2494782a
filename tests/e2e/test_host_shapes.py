"""seedcore-boot on hosts shaped like the machines people have (tests/nshost.py's shapes), not only on pristine
ones: each command comes up, or refuses in one line with exit 1 or 2, never a traceback.

Shapes share hosts where one does not hide another's effect, and `--dry-run` or `check-ports` stand in for a
start where a start would add nothing: every Ray start here costs half a minute of CI.
"""

import json
import os
import signal
import sys

import pytest

pytestmark = pytest.mark.e2e
BOOT = [sys.executable, "-m", "seedcore_boot"]
HEAD_IP = "10.200.0.1"
HEAD = f"{HEAD_IP}:6379"


def one_line_refusal(out, code=(1, 2)):
    """A refusal as the CLI promises it: the exit code, one error line, no traceback."""
    text = out.stdout + out.stderr
    assert out.returncode in code, text[-3000:]
    assert "Traceback" not in text, text[-3000:]
    errors = [l for l in out.stderr.splitlines() if l.startswith("seedcore-boot: error:")]
    assert len(errors) == 1 and out.stderr.strip() == errors[0], out.stderr
    return errors[0]


def no_traceback(text):
    assert "Traceback" not in text, text[-3000:]


def boot(host, *args, timeout=120):
    out = host.run([*BOOT, *args], timeout=timeout)
    no_traceback(out.stdout + out.stderr)
    return out


# --- defect 3: a worker's temp dir is its head's -------------------------------------------------------
def test_worker_uses_checks_and_reports_its_heads_temp_dir(lan):
    """A head on a data disk (/srv/ray, a filesystem of its own), a worker on the default temp dir: Ray gives
    the worker the head's path, so the worker checks that directory, says its own setting is ignored, keeps
    its state where its own settings find it, and shows its Ray's log tails from there when Ray fails."""
    h1, h2 = lan(1), lan(2)
    for h in (h1, h2):
        h.mount_tmpfs("/srv", size="2g")  # the worker's Ray creates /srv/ray too: on its own host, never ours
    head = h1.boot("head", "--no-serve", "--node-ip-address", HEAD_IP, "--num-cpus", "1", "--temp-dir", "/srv/ray")
    head.wait_line("head ready", timeout=180)

    dry = boot(h2, "worker", "--address", HEAD, "--dry-run")
    assert dry.returncode == 0 and "--temp-dir" not in dry.stdout  # Ray would only warn that it ignores it
    assert "a worker's Ray uses its head's temp dir" in dry.stdout

    worker = h2.boot("worker", "--address", HEAD, "--num-cpus", "1")
    worker.wait_line("worker ready", timeout=180)
    out = worker.output
    assert "temp_dir /tmp/ray is ignored by Ray on a worker" in out and "its head's temp dir, /srv/ray" in out
    assert "temp dir /srv/ray:" in out and "GiB free" in out  # the free-space check ran on the right dir
    assert os.path.isdir(h2.path("/srv/ray/session_latest/logs"))
    assert not [n for n in os.listdir(h2.path("/tmp/ray")) if n.startswith("session_")]

    # status and the node file: found with the worker's own (default) settings, naming Ray's real dir
    status = boot(h2, "status", "--json")
    assert status.returncode == 0, status.stdout
    assert json.loads(status.stdout)["role"] == "worker"
    records = [json.loads(h2.read(f"/tmp/ray/seedcore-boot/{n}")) for n in os.listdir(h2.path("/tmp/ray/seedcore-boot"))
               if n.startswith("worker-") and n.endswith(".json")]
    assert [r["temp_dir"] for r in records] == ["/srv/ray"]

    # Ray fails on the worker: the log tails come from the directory Ray really wrote them to
    for raylet in h2.find("raylet"):
        raylet.send_signal(signal.SIGKILL)
    assert worker.wait(60) == 1
    assert "----- /srv/ray/session_latest/logs/raylet.out -----" in worker.output, worker.output_tail(80)
    assert "seedcore-boot: error: Ray died" in worker.output
    no_traceback(worker.output.split("ray |", 1)[0])
    stop = boot(h2, "stop")
    assert stop.returncode == 0 and "no running seedcore-boot node under /tmp/ray/seedcore-boot" in stop.stdout
    head.signal(signal.SIGTERM)
    assert head.wait(60) == 0
