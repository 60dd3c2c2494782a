"""The `ray` CLI wrapper: its port wait with real sockets, and that it applies to the installed Ray."""

import os
import socket
import subprocess
import sys

import pytest

from seedcore_boot.ray import raycli
from tests.skips import need_module


def test_wait_for_port_returns_once_the_port_accepts():
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        assert raycli.wait_for_port("127.0.0.1", srv.getsockname()[1], alive=lambda: True, limit=5)


def test_wait_for_port_gives_up_when_the_server_died_or_time_ran_out():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: connections are refused
        assert not raycli.wait_for_port("127.0.0.1", port, alive=lambda: False)
        assert not raycli.wait_for_port("127.0.0.1", port, alive=lambda: True, limit=0.2)


def test_patch_applies_to_the_installed_ray_once():
    node = need_module("ray._private.node")
    assert raycli.patch_ray() and raycli.patch_ray()
    wrapped = node.Node._init_gcs_client
    assert wrapped._seedcore_wait and not getattr(wrapped.__wrapped__, "_seedcore_wait", False)


# A stand-in GCS: a real child process that starts listening only after a while, as gcs_server does.
LATE_SERVER = r"""
import socket, sys, time
time.sleep(0.5)
s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(); time.sleep(30)
"""


class _Proc:
    def __init__(self, process):
        self.process = process


class _Node:
    def __init__(self, head, gcs_process, port):
        self.head, self.gcs_address = head, f"127.0.0.1:{port}"
        self.all_processes = {"gcs_server": [_Proc(gcs_process)]}


def _accepts(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


@pytest.mark.parametrize("head", [True, False])
def test_a_head_connects_only_once_its_gcs_accepts(head):
    need_module("ray")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-c", LATE_SERVER, str(port)])
    try:
        connect = raycli.wait_before(lambda node: _accepts(port))
        # a head waits for its GCS; a worker's GCS is remote, so it connects at once (Ray retries it)
        assert connect(_Node(head, server, port)) is head
    finally:
        server.kill()
        server.wait()


def _gated(stdin_text):
    env = dict(os.environ, **{raycli.GATE: "1"})
    return subprocess.run([sys.executable, "-m", "seedcore_boot.ray.raycli", "--version"], input=stdin_text,
                          env=env, capture_output=True, text=True, timeout=120)


def test_gated_cli_runs_only_once_released():
    need_module("ray")
    released = _gated("go\n")
    assert released.returncode == 0 and "2.20.0" in released.stdout
    dropped = _gated("")  # the supervisor went away without releasing it
    assert dropped.returncode == 0 and dropped.stdout == ""


def test_rays_sigterm_handler_runs_once():
    """A second SIGTERM while Ray's handler stops the node must not re-enter it (it deadlocks on its lock)."""
    import os
    import signal

    from seedcore_boot.ray.raycli import sigterm_once

    calls = []

    def handler(signum, frame):
        calls.append(signum)
        os.kill(os.getpid(), signal.SIGTERM)  # arrives while the handler runs

    previous = signal.signal(signal.SIGTERM, sigterm_once(handler))
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        assert calls == [signal.SIGTERM]
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGTERM, previous)


# --- the dashboard starts beside the raylet ------------------------------------------------------------

@pytest.mark.parametrize("host,node_ip,url", [
    ("127.0.0.1", "10.0.0.5", "127.0.0.1:8265"),  # what dashboard/head.py writes for a loopback dashboard
    ("localhost", "10.0.0.5", "127.0.0.1:8265"),
    ("0.0.0.0", "10.0.0.5", "10.0.0.5:8265"),  # all interfaces: the node's address, for the workers
    ("::", "10.0.0.5", "10.0.0.5:8265"),
    ("10.0.0.5", "10.0.0.5", "10.0.0.5:8265"),
    ("0.0.0.0", "127.0.0.1", "127.0.0.1:8265"),
])
def test_the_dashboard_url_is_what_the_dashboard_will_write(host, node_ip, url):
    assert raycli.dashboard_url(host, 8265, node_ip) == url


def test_no_url_when_the_port_is_not_pinned_or_the_node_unknown():
    assert raycli.dashboard_url("127.0.0.1", None, "10.0.0.5") is None  # the dashboard may pick its port
    assert raycli.dashboard_url("127.0.0.1", 0, "10.0.0.5") is None
    assert raycli.dashboard_url("127.0.0.1", 8265, None) is None


def _start_api_server(include_dashboard, raise_on_failure, host, gcs_address, node_ip_address, temp_dir,
                      logdir, session_dir, port=None, kv=None):
    """Stand-in with Ray 2.20's parameters: polls the KV as services.start_api_server does."""
    for _ in range(3):
        url = kv._internal_kv_get("dashboard", namespace=b"dashboard")
        if url is not None:
            return url.decode(), "process"
    return None, "process"


class _KV:
    def __init__(self):
        self.asked = []

    def _internal_kv_get(self, key, namespace=None):
        self.asked.append((key, namespace))
        return b"other" if key != "dashboard" else None


def test_the_poll_gets_the_known_url_at_once_and_the_kv_is_restored():
    kv = _KV()
    original = kv._internal_kv_get
    wrapped = raycli.skip_dashboard_wait(_start_api_server, kv, "dashboard", b"dashboard")
    args = (True, True, "0.0.0.0", "10.0.0.5:6379", "10.0.0.5", "/tmp/ray", "/tmp/ray/logs", "/tmp/ray/s")
    assert wrapped(*args, port=8265, kv=kv) == ("10.0.0.5:8265", "process")
    assert kv.asked == [] and kv._internal_kv_get == original  # Ray's poll never reached the GCS
    # the port not pinned: Ray's own poll, unchanged (it waits for the dashboard's registration)
    assert wrapped(*args, kv=kv) == (None, "process") and len(kv.asked) == 3


def test_other_keys_go_to_the_gcs_during_the_call():
    kv = _KV()

    def start(include_dashboard, raise_on_failure, host, gcs_address, node_ip_address, port=None):
        return kv._internal_kv_get("webui:url", namespace=b"dashboard"), \
            kv._internal_kv_get("dashboard", namespace=b"session")

    wrapped = raycli.skip_dashboard_wait(start, kv, "dashboard", b"dashboard")
    assert wrapped(True, True, "127.0.0.1", "x:1", "10.0.0.5", port=8265) == (b"other", None)
    assert kv.asked == [("webui:url", b"dashboard"), ("dashboard", b"session")]


def test_the_wait_is_skipped_only_on_the_ray_it_was_read_on():
    services = need_module("ray._private.services")
    original = getattr(services.start_api_server, "__wrapped__", services.start_api_server)
    assert raycli.can_skip_dashboard_wait(original, "2.20.0")
    assert not raycli.can_skip_dashboard_wait(original, "2.21.0")
    assert not raycli.can_skip_dashboard_wait(lambda host, port: None, "2.20.0")  # other parameters
    # Ray's parameters but no KV poll inside: not the code read
    assert not raycli.can_skip_dashboard_wait(_start_api_server, "2.20.0")


def test_the_dashboard_patch_applies_to_the_installed_ray_once():
    services = need_module("ray._private.services")
    assert raycli.patch_dashboard_start() and raycli.patch_dashboard_start()
    wrapped = services.start_api_server
    assert wrapped._seedcore_dashboard and not getattr(wrapped.__wrapped__, "_seedcore_dashboard", False)


# --- `ray start` without Ray's other command groups ------------------------------------------------------

def test_other_command_groups_are_left_out_only_of_start_on_the_ray_read():
    modules = {"ray.util.state.state_cli": "loaded"}
    assert raycli.skip_cli_groups(["ray", "start", "--head"], "2.20.0", modules) == \
        ["ray.serve.scripts", "ray.dashboard.modules.job.cli"]
    assert modules == {"ray.util.state.state_cli": "loaded", "ray.serve.scripts": None,
                       "ray.dashboard.modules.job.cli": None}
    assert raycli.skip_cli_groups(["ray", "status"], "2.20.0", {}) == []
    assert raycli.skip_cli_groups(["ray", "start"], "2.21.0", {}) == []


def test_ray_start_runs_without_them():
    need_module("ray")
    code = ("import sys; from seedcore_boot.ray import raycli; sys.argv = ['raycli', 'start', '--help']\n"
            "try:\n    raycli.main()\nexcept SystemExit as e:\n    print('rc', e.code)\n"
            "print('serve', 'ray.serve' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "--head" in out.stdout and "rc 0" in out.stdout and "serve False" in out.stdout, out.stdout + out.stderr
