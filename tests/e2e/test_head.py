"""`seedcore-boot head` against real Ray 2.20.0, each test on its own throwaway host (see tests/nshost.py)."""

import json
import os
import re
import sys
import signal
import time

import pytest

from tests.e2e.test_faults import wait_empty
from tests.skips import need

pytestmark = pytest.mark.e2e

LOGS = "/tmp/ray/session_latest/logs"
READY = "head ready"
NO_SERVE = "--no-serve"


def start_ready(host, *args, env=None):
    proc = host.boot("head", NO_SERVE, *args, env=env)
    proc.wait_line(READY, timeout=120)
    return proc


def assert_stopped_clean(host, proc, timeout=30):
    rc = proc.wait(timeout)
    left = [(p.pid, p.info["name"]) for p in host.processes()]
    assert left == [], f"left running: {left}\n{proc.output_tail()}"
    return rc


# Inside a host: the dashboard's URL as Ray recorded it in the GCS: under "dashboard" (written by the dashboard
# itself; what `ray job` and JobSubmissionClient read) and "webui:url" (written by `ray start`, from what
# raycli told it; what a worker's `ray start` and a driver's ray.init() read).
RECORDED_URLS = """
import sys, time
from ray._raylet import GcsClient
c = GcsClient(address=sys.argv[1])
end = time.monotonic() + 10
while c.internal_kv_get(b"dashboard", b"dashboard") is None and time.monotonic() < end:
    time.sleep(0.1)  # written just after its HTTP server answers
print(c.internal_kv_get(b"dashboard", b"dashboard").decode(), c.internal_kv_get(b"webui:url", b"dashboard").decode())
"""


def recorded_urls(host, gcs="127.0.0.1:6379"):
    out = host.python(RECORDED_URLS, gcs)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def test_clean_head_becomes_ready_with_working_metrics(host):
    proc = start_ready(host)
    status, body = host.http("http://127.0.0.1:8265/api/version")
    assert status == 200 and json.loads(body)["ray_version"] == "2.20.0"
    status, body = host.http("http://127.0.0.1:8080/metrics")
    assert status == 200 and "ray_" in body, body[:300]
    status, body = host.http("http://127.0.0.1:44227/metrics")
    assert status == 200 and "# TYPE" in body
    assert "Address already in use" not in host.read(f"{LOGS}/dashboard.log")
    ready = json.loads(host.read("/tmp/ray/seedcore-boot/head.ready"))
    assert ready["endpoints"]["metrics"].endswith(":8080/metrics")
    # Ray's CLI ran through our wrapper, and Ray's components got the faster socket retries.
    assert any("seedcore_boot.ray.raycli" in p.cmdline() and "start" in p.cmdline() for p in host.processes())
    raylet, = host.find("raylet")
    assert raylet.environ().get("RAY_raylet_client_connect_timeout_milliseconds") == "100"

    status = host.run([*_boot(), "status", "--json"])
    assert status.returncode == 0, status.stdout + status.stderr
    assert all(p["ok"] for p in json.loads(status.stdout)["probes"])
    # Without TLS the report says what anyone who reaches a port can do (#19); the dashboard stays on loopback.
    exposed = {l["name"]: l for l in json.loads(status.stdout)["exposure"]}
    assert exposed["gcs"]["tls"] is False and "run code" in exposed["gcs"]["anonymous"] and "dashboard" not in exposed
    assert re.search(r"\[exposure [^]]*\] \d+ listener\(s\) of this node are bound beyond loopback; \d+ let anyone "
                     r"who reaches them run code \(no TLS\): 6379, ", proc.output), proc.output_tail()
    assert host.run([*_boot(), "status", "--live"]).returncode == 0
    # The ready line shows what the node advertises, as the raylet got it.
    ready_line = proc.wait_line(READY, timeout=1)
    assert re.search(r"advertises CPU=\d+ memory=[\d.]+GiB object_store_memory=[\d.]+GiB", ready_line), ready_line
    # The cluster's versions, read the way a worker reads them before its start.
    out = host.python("import platform; from seedcore_boot.ray.gcsprobe import cluster_versions; "
                      "print(cluster_versions('127.0.0.1', 6379) == ('2.20.0', platform.python_version()))")
    assert out.stdout.strip() == "True", out.stdout + out.stderr
    assert recorded_urls(host) == ["127.0.0.1:8265", "127.0.0.1:8265"]

    proc.signal(signal.SIGTERM)
    assert assert_stopped_clean(host, proc) == 0
    assert "head stopped" in proc.output


def test_the_dashboard_url_recorded_on_all_interfaces_is_the_nodes(lan):
    """Ray records the dashboard's URL before the dashboard answers (raycli): on all interfaces it is the
    node's address, as the dashboard itself writes it; a driver reads it back."""
    h1 = lan(1)
    head = h1.boot("head", "--no-serve", "--node-ip-address", "10.200.0.1", "--dashboard-host", "0.0.0.0",
                   "--num-cpus", "1")
    head.wait_line(READY, timeout=180)
    assert recorded_urls(h1) == ["10.200.0.1:8265", "10.200.0.1:8265"]
    code = "import ray; print(ray.init(address='10.200.0.1:6379', logging_level='ERROR').dashboard_url)"
    out = h1.python(code, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "10.200.0.1:8265", out.stdout + out.stderr
    head.signal(signal.SIGTERM)
    assert head.wait(30) == 0


def test_seed_variables_with_44227_taken(host):
    """The seed's three variables exported and 44227 held: the head still comes up, metrics elsewhere."""
    holder, _ = host.hold_port(44227)
    seed = {"RAY_DISABLE_METRICS_SERVER": "1", "RAY_METRICS_EXPORT_PORT": "8080",
            "RAY_DASHBOARD_METRICS_PORT": "8080"}
    proc = start_ready(host, env=seed)
    moved = re.search(r"dashboard_metrics_port moved to free port (\d+) \(configured 8080", proc.output)
    assert moved, proc.output_tail()
    port = int(moved.group(1))
    assert port not in (44227, 8080)
    status, body = host.http(f"http://127.0.0.1:{port}/metrics")
    assert status == 200 and "# TYPE" in body
    status, body = host.http("http://127.0.0.1:8080/metrics")
    assert status == 200 and "ray_" in body
    dashboard_log = host.read(f"{LOGS}/dashboard.log")
    assert "Traceback" not in dashboard_log
    assert "An exception occurred while starting the metrics server" not in dashboard_log
    # The user's variables stay visible to Ray's processes, next to the knob Ray reads.
    dash = [p for p in host.processes() if "dashboard/dashboard.py" in " ".join(p.cmdline())][0]
    environ = open(f"/proc/{dash.pid}/environ", "rb").read().decode().split("\0")
    assert f"DASHBOARD_METRIC_PORT={port}" in environ
    assert "RAY_DISABLE_METRICS_SERVER=1" in environ and "RAY_DASHBOARD_METRICS_PORT=8080" in environ
    proc.signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    holder.kill()


@pytest.mark.parametrize("port,name", [(6379, "gcs"), (8265, "dashboard"), (8080, "metrics_export"),
                                       (10001, "client"), (52365, "dashboard_agent_http")])
def test_busy_port_fails_before_ray_starts(host, port, name):
    holder, holder_pid = host.hold_port(port, "127.0.0.1" if name == "dashboard" else "0.0.0.0")
    t = time.monotonic()
    proc = host.boot("head", NO_SERVE)
    rc = proc.wait(30)
    elapsed = time.monotonic() - t
    assert rc == 1, proc.output
    assert f"({name})" in proc.output and f"pid {holder_pid}" in proc.output, proc.output
    assert "kill" in proc.output and "Traceback" not in proc.output
    assert "ray |" not in proc.output and "started `" not in proc.output  # Ray was never started
    assert [p.info["name"] for p in host.processes()] == ["python"]  # only the holder
    print(f"port {port}: exit {rc} after {elapsed:.2f} s (nsenter and interpreter start included)")
    holder.kill()


def test_sigterm_before_the_marker(host):
    proc = host.boot("head", NO_SERVE)
    proc.wait_line("started `", timeout=60)
    proc.signal(signal.SIGTERM)
    assert assert_stopped_clean(host, proc) == 0
    assert READY not in proc.output and "head stopped" in proc.output


def test_sigterm_after_ready(host):
    proc = start_ready(host)
    assert host.find("raylet") and host.find("gcs_server")
    proc.signal(signal.SIGTERM)
    assert assert_stopped_clean(host, proc) == 0
    assert not os.path.exists(host.path("/tmp/ray/seedcore-boot/head.ready"))


def test_raylet_killed_means_exit_1(host):
    proc = start_ready(host)
    raylet = host.find("raylet")[0]
    raylet.kill()
    t = time.monotonic()
    rc = proc.wait(timeout=120)  # only a hang reaches this; the time is printed, not asserted
    print(f"exit {rc} {time.monotonic() - t:.2f} s after SIGKILL of the raylet")
    assert rc == 1
    assert "raylet" in proc.output.split("seedcore-boot: error:")[-1]
    assert [p.info["name"] for p in host.processes()] == []


def _boot():
    return [sys.executable, "-m", "seedcore_boot"]


def test_stop_command_stops_our_node_and_nothing_else(host):
    # A decoy named like a Ray component: `ray stop` would kill it by name; `seedcore-boot stop` must not.
    host.run(["cp", "/bin/sleep", "/tmp/raylet"])
    decoy = host.spawn(["/tmp/raylet", "600"])
    proc = start_ready(host)
    out = host.run([*_boot(), "stop"], timeout=60)
    assert out.returncode == 0 and "stopping the head" in out.stdout, out.stdout + out.stderr
    assert proc.wait(30) == 0
    left = [p.info["name"] for p in host.processes()]
    assert left == ["raylet"] and decoy.popen.poll() is None  # only the decoy is left
    assert host.run([*_boot(), "stop"]).stdout.startswith("no running seedcore-boot node")
    decoy.kill()


def test_object_store_too_big_for_dev_shm_is_sized_to_fit_never_put_in_tmp():
    """A /dev/shm of 300 MiB (a container's shm_size): Ray's default store (30% of memory) would go to /tmp."""
    from tests.nshost import NsHost, can_make_hosts

    need(*can_make_hosts())
    host = NsHost("smallshm", shm_size="300m")
    try:
        proc = start_ready(host)
        line = proc.wait_line("object store sized to", timeout=5)
        assert "shm_size:" in line and "--shm-size=" in line
        raylet, = host.find("raylet")
        store = int(re.search(r"--object_store_memory=(\d+)", " ".join(raylet.cmdline())).group(1))
        assert store == int(300 * 2**20 * 0.95)
        assert "instead of /dev/shm" not in proc.output
        assert not any("instead of /dev/shm" in host.read(f"{LOGS}/{name}")
                       for name in os.listdir(host.path(LOGS)) if name.endswith((".out", ".err", ".log")))
        status = host.run([*_boot(), "status"])
        assert status.returncode == 0, status.stdout
        proc.signal(signal.SIGTERM)
        assert assert_stopped_clean(host, proc) == 0
    finally:
        host.close()


def test_a_second_signal_skips_the_grace_period(host):
    """docs/running.md: a second signal skips the grace period. `ray start` is suspended, so the first SIGTERM
    alone would wait out all 600 s of grace before SIGKILL; the second ends it at once."""
    proc = start_ready(host, "--grace-period", "600")
    ray_start, = [p for p in host.processes() if "seedcore_boot.ray.raycli" in " ".join(p.cmdline())]
    ray_start.suspend()
    proc.signal(signal.SIGTERM)
    proc.wait_line("received, stopping the head (grace 600 s)", timeout=60)
    time.sleep(1)
    assert proc.popen.poll() is None, proc.output_tail()  # the first signal alone: still in its grace
    t = time.monotonic()
    proc.signal(signal.SIGTERM)
    rc = proc.wait(120)  # far inside the 600 s grace: only a second signal that is ignored reaches this
    print(f"stopped {time.monotonic() - t:.1f} s after the second signal")
    assert rc == 0, proc.output_tail()
    assert "killed after the grace period:" in proc.output and "head stopped" in proc.output, proc.output_tail()
    assert host.processes() == []


def test_log_format_json_gives_json_lines(host):
    """`--log-format json` (docs/running.md): every line of a start and a stop is one JSON object, Ray's own
    lines included (as {"source": "ray", "line": ...})."""
    proc = host.boot("head", NO_SERVE, "--log-format", "json")
    proc.wait_line(lambda l: '"phase": "ready"' in l, timeout=120)
    proc.signal(signal.SIGTERM)
    assert assert_stopped_clean(host, proc) == 0
    records = [json.loads(line) for line in proc.output.splitlines() if line.strip()]  # raises on any other line
    phases = [r["phase"] for r in records if "phase" in r]
    assert {"start", "ready", "stop"} <= set(phases), phases
    assert phases.index("start") < phases.index("ready") < phases.index("stop")
    assert any(r.get("source") == "ray" for r in records)
    ready = next(r for r in records if r.get("phase") == "ready")
    assert ready["msg"].startswith(READY) and ready["level"] == "info" and "endpoints" in ready, ready


RAY_BESIDE = os.path.join(os.path.dirname(sys.executable), "ray")


@pytest.mark.parametrize("case,code", [("not found", 127), ("not executable", 126)])
def test_a_ray_command_that_cannot_run(host, case, code):
    """Exit codes 127 and 126 (docs/running.md): no `ray` beside this Python nor on PATH; a `ray` on PATH that
    cannot be executed. The `ray` beside this Python is hidden in this host's own mount namespace only."""
    hidden = host.run(["mount", "--bind", "/dev/null", RAY_BESIDE])
    assert hidden.returncode == 0, hidden.stderr
    path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    if case == "not executable":
        host.write("/tmp/bin/ray", "not a program\n")  # no #!, no binary: execve says ENOEXEC
        os.chmod(host.path("/tmp/bin/ray"), 0o755)
        path = "/tmp/bin:" + path
    proc = host.boot("head", NO_SERVE, env={"PATH": path})
    assert proc.wait(60) == code, proc.output_tail()
    errors = [l for l in proc.output.splitlines() if l.startswith("seedcore-boot: error:")]
    assert len(errors) == 1 and "Traceback" not in proc.output, proc.output
    assert ("`ray` command was not found" if code == 127 else "cannot run /tmp/bin/ray: not executable") \
        in errors[0], errors
    assert wait_empty(host, 60) == []


def test_a_ready_file_left_by_a_sigkill_does_not_count(host):
    """`status` (docs/running.md): the ready file must be written by this node's live supervisor. With the
    supervisor and `ray start` SIGKILLed, Ray's servers outlive them until the watchdog's grace ends and the
    ready file is still there; status says not ready all the same."""
    proc = start_ready(host, "--grace-period", "60")
    ray_start, = [p for p in host.processes() if "seedcore_boot.ray.raycli" in " ".join(p.cmdline())]
    ray_start.kill()
    proc.inner().kill()
    proc.wait(60)
    assert os.path.exists(host.path("/tmp/ray/seedcore-boot/head.ready"))
    outliving = sorted(p.info["name"] for p in host.processes())
    assert outliving, "nothing of the node outlived its supervisor"  # until the watchdog's grace ends
    out = host.run([*_boot(), "status"])
    assert out.returncode == 1, out.stdout + out.stderr
    assert "NOT healthy" in out.stdout, out.stdout
    print(f"outliving the supervisor: {outliving}\n{out.stdout}")
    assert wait_empty(host, 120) == []  # the watchdog ends the rest after the 60 s grace
