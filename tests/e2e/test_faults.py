"""Nothing left behind: the fault matrix (kill -9 of each Ray component, of the supervisor itself), SIGTERM at
each phase of the start, and `seedcore-boot stop` after a supervisor death. Real Ray on throwaway hosts."""

import signal
import sys
import time

import psutil
import pytest

from seedcore_boot.node.flow import TEST_HOLD
from seedcore_boot.ray.components import component_name
from tests.e2e.test_worker import HEAD, start_head

pytestmark = pytest.mark.e2e
BOOT = [sys.executable, "-m", "seedcore_boot"]
HEAD_COMPONENTS = ["gcs_server", "raylet", "dashboard", "dashboard_agent", "runtime_env_agent", "log_monitor",
                   "autoscaler_monitor", "ray_client_server"]
WORKER_COMPONENTS = ["raylet", "dashboard_agent", "runtime_env_agent", "log_monitor"]


def component(host, name):
    for p in host.processes():
        if component_name(p) == name:
            return p
    raise AssertionError(f"no {name} on {host.name}: {[p.info['name'] for p in host.processes()]}")


def left(host):
    out = []
    for p in host.processes():
        try:
            out.append((p.pid, p.info["name"], " ".join(p.cmdline()[:3])))
        except psutil.Error:
            continue  # exited (a zombie until the host's init reaps it) between the listing and now
    return out


def wait_empty(host, timeout):
    end = time.monotonic() + timeout
    while host.processes() and time.monotonic() < end:
        time.sleep(0.1)
    return left(host)


def head_ready(host, *args, env=None):
    proc = host.boot("head", "--no-serve", *args, env=env)
    proc.wait_line("head ready", timeout=120)
    return proc


def assert_component_death(proc, host, name):
    t = time.monotonic()
    rc = proc.wait(timeout=120)  # only a hang reaches this; the time is printed, not asserted
    print(f"{name}: exit {rc} after {time.monotonic() - t:.2f} s")
    assert rc == 1, proc.output_tail()
    error = proc.output.split("seedcore-boot: error:")[-1]
    assert name in error, error
    assert left(host) == []


@pytest.mark.parametrize("name", HEAD_COMPONENTS)
def test_head_component_killed(host, name):
    proc = head_ready(host)
    component(host, name).kill()
    assert_component_death(proc, host, name)
    again = head_ready(host)  # an immediate restart in the same network namespace
    again.signal(signal.SIGTERM)
    assert again.wait(30) == 0 and left(host) == []


# On the host's PYTHONPATH: the dashboard dies as it starts (as with a broken dependency); every other Python runs.
BROKEN_DASHBOARD = """import os, sys
if sys.argv and sys.argv[0].endswith("dashboard/dashboard.py"):
    print("ImportError: a dependency of the dashboard is broken (test)", file=sys.stderr, flush=True)
    os._exit(1)
"""


def test_a_dashboard_that_cannot_start(host):
    """raycli lets the dashboard start beside the raylet, so `ray start` no longer fails before the raylet when
    it dies: `ray start --block` reports it after its marker, and we exit 1 naming it, nothing left."""
    host.write("/tmp/broken/sitecustomize.py", BROKEN_DASHBOARD)
    proc = host.boot("head", "--no-serve", env={"PYTHONPATH": "/tmp/broken"})
    assert proc.wait(120) == 1, proc.output_tail()
    error = proc.output.split("seedcore-boot: error:")[-1]
    assert "dashboard" in error and "exit code" in error, error
    assert "a dependency of the dashboard is broken" in proc.output  # its log's tail: the cause, on screen
    assert "head ready" not in proc.output
    assert left(host) == []


@pytest.mark.parametrize("name", WORKER_COMPONENTS)
def test_worker_component_killed(lan, name):
    h1, h2 = lan(1), lan(2)
    head = start_head(h1)
    worker = h2.boot("worker", "--address", HEAD, "--num-cpus", "1")
    worker.wait_line("worker ready", timeout=120)
    component(h2, name).kill()
    assert_component_death(worker, h2, name)
    again = h2.boot("worker", "--address", HEAD, "--num-cpus", "1")
    again.wait_line("worker ready", timeout=120)
    again.signal(signal.SIGTERM)
    assert again.wait(30) == 0 and left(h2) == []
    head.signal(signal.SIGTERM)
    assert head.wait(30) == 0


def test_supervisor_killed_stops_its_node_in_order(host):
    """SIGKILL of seedcore-boot (not PID 1 here): `ray start` gets SIGTERM (PR_SET_PDEATHSIG) and stops its
    components itself, in order."""
    proc = head_ready(host)
    supervisor = proc.inner()
    assert supervisor.pid != 1
    t = time.monotonic()
    supervisor.kill()
    assert wait_empty(host, 60) == []
    print(f"node gone {time.monotonic() - t:.1f} s after SIGKILL of the supervisor")
    assert "watchdog" not in proc.output  # nothing outlived `ray start`'s own stop


def test_what_outlives_ray_start_is_killed_by_the_watchdog(host):
    """SIGKILL of the supervisor and of `ray start` together: nobody stops the components in order, so the
    watchdog ends them after the grace period."""
    proc = head_ready(host, "--grace-period", "2")
    ray_start = [p for p in host.processes() if "seedcore_boot.ray.raycli" in " ".join(p.cmdline())]
    assert len(ray_start) == 1
    ray_start[0].kill()
    proc.inner().kill()
    assert wait_empty(host, 60) == []
    assert "seedcore-boot watchdog: the supervisor of /tmp/ray/seedcore-boot/head-6380 is gone" in proc.output


def test_stop_ends_a_node_whose_supervisor_died(host):
    """The watchdog SIGKILLed, `ray start` frozen (SIGSTOP: it cannot act on its parent-death SIGTERM), then
    the supervisor SIGKILLed: the node runs on without a supervisor. (Ray's own components die with `ray
    start`, by PR_SET_PDEATHSIG, so a frozen or hung `ray start` is how a node outlives everything.) The next
    head names the leftovers; `seedcore-boot stop` ends them, and a decoy named raylet lives."""
    host.run(["cp", "/bin/sleep", "/tmp/raylet"])
    decoy = host.spawn(["/tmp/raylet", "600"])
    proc = head_ready(host)
    for p in host.processes():
        cmd = " ".join(p.cmdline())
        if "seedcore_boot.host.leftovers" in cmd:
            p.kill()
        elif "seedcore_boot.ray.raycli" in cmd:
            p.suspend()
    proc.inner().kill()
    proc.wait(60)
    time.sleep(1)
    assert host.find("gcs_server") and host.find("raylet")  # components outlived their supervisor

    busy = host.boot("head", "--no-serve")
    assert busy.wait(30) == 1
    assert "whose supervisor died" in busy.output and "seedcore-boot stop" in busy.output, busy.output
    ports = host.run([*BOOT, "check-ports"])
    assert ports.returncode == 1 and "whose supervisor died" in ports.stdout

    out = host.run([*BOOT, "stop"], timeout=60)
    assert out.returncode == 0 and "whose seedcore-boot supervisor died" in out.stdout, out.stdout + out.stderr
    assert [p.info["name"] for p in host.processes()] == ["raylet"] and decoy.popen.poll() is None
    assert psutil.Process(decoy.inner().pid).is_running()
    again = head_ready(host)
    again.signal(signal.SIGTERM)
    assert again.wait(30) == 0
    decoy.kill()


@pytest.mark.parametrize("phase", ["health", "serve"])
def test_sigterm_during_the_start(host, phase):
    if phase == "health":
        proc = host.boot("head", "--no-serve", env={TEST_HOLD: "health:60"})
        proc.wait_line("holding 60 s", timeout=120)
    else:
        proc = host.boot("head")
        proc.wait_line("deploying 1 Serve application", timeout=120)
    proc.signal(signal.SIGTERM)
    assert proc.wait(30) == 0, proc.output_tail()
    assert "head stopped" in proc.output and "head ready" not in proc.output
    assert wait_empty(host, 60) == []
