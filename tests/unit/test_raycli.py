"""The `ray` CLI wrapper: its port wait with real sockets, and that it applies to the installed Ray."""

import os
import socket
import subprocess
import sys

import pytest

from seedcore_boot import raycli


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
    node = pytest.importorskip("ray._private.node")
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
    pytest.importorskip("ray")
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
    return subprocess.run([sys.executable, "-m", "seedcore_boot.raycli", "--version"], input=stdin_text,
                          env=env, capture_output=True, text=True, timeout=120)


def test_gated_cli_runs_only_once_released():
    pytest.importorskip("ray")
    released = _gated("go\n")
    assert released.returncode == 0 and "2.20.0" in released.stdout
    dropped = _gated("")  # the supervisor went away without releasing it
    assert dropped.returncode == 0 and dropped.stdout == ""


def test_rays_sigterm_handler_runs_once():
    """A second SIGTERM while Ray's handler stops the node must not re-enter it (it deadlocks on its lock)."""
    import os
    import signal

    from seedcore_boot.raycli import sigterm_once

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
