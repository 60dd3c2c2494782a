import errno
import json
import os
import socket

import pytest

from seedcore_boot.config.settings import resolve
from seedcore_boot.errors import BootError
from seedcore_boot.host import ports
from tests.skips import need


def listener(family=socket.AF_INET, host="127.0.0.1", v6only=True):
    s = socket.socket(family, socket.SOCK_STREAM)
    if family == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1 if v6only else 0)
    s.bind((host, 0))
    s.listen()
    return s


def test_plan_names_every_fixed_port_of_a_head():
    names = [p.name for p in ports.plan(resolve({}, {}).settings, "head")]
    assert names == ["gcs", "dashboard", "dashboard_grpc", "client", "metrics_export", "dashboard_metrics",
                     "autoscaler_metrics", "dashboard_agent_http", "dashboard_agent_grpc", "node_manager",
                     "object_manager", "runtime_env_agent", "serve_http"]
    assert "serve_http" not in [p.name for p in ports.plan(resolve({"serve": False}, {}).settings, "head")]


def test_duplicate_ports_are_a_settings_error():
    s = resolve({"client_port": "8265"}, {}).settings
    with pytest.raises(BootError) as err:
        ports.check_duplicates(ports.plan(s, "head"), s)
    assert err.value.exit_code == 2 and "8265" in str(err.value) and "client_port" in str(err.value)


def test_fixed_port_inside_the_worker_range_is_refused():
    s = resolve({"dashboard_port": "12000"}, {}).settings
    with pytest.raises(BootError, match="worker port range"):
        ports.check_duplicates(ports.plan(s, "head"), s)


def test_probe_sees_a_real_listener_and_the_holder_is_named():
    sock = listener(host="0.0.0.0")
    port = sock.getsockname()[1]
    try:
        assert ports.probe(ports.WILDCARD, port) == errno.EADDRINUSE
        assert ports.probe("127.0.0.1", port) == errno.EADDRINUSE
        found = ports.holders([port])[port]
        assert found[0].pid == os.getpid()
        status = ports.check([ports.PlannedPort("metrics_export", port, "", "metrics_export_port")])[0]
        msg = str(ports.busy_message(status))
        assert f"pid {os.getpid()}" in msg and "(metrics_export)" in msg and "metrics_export_port" in msg
    finally:
        sock.close()
    assert ports.probe(ports.WILDCARD, port) is None


def test_ipv6_only_listener_is_found_by_a_wildcard_probe():
    try:
        sock = listener(socket.AF_INET6, "::1")
    except OSError as exc:
        need(False, f"no IPv6 loopback here ({exc})")
    port = sock.getsockname()[1]
    try:
        assert ports.probe(ports.WILDCARD, port) == errno.EADDRINUSE
    finally:
        sock.close()


def test_a_port_in_time_wait_counts_as_free():
    # Like Ray's servers, the earlier owner set SO_REUSEADDR; Linux then lets its TIME_WAIT be rebound.
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    port = srv.getsockname()[1]
    cli = socket.create_connection(("127.0.0.1", port))
    conn, _ = srv.accept()
    conn.close()  # the server side closes first, so the server's port sits in TIME_WAIT
    cli.close()
    srv.close()
    assert "TIME_WAIT" in _states_of(port)
    assert ports.probe(ports.WILDCARD, port) is None


def _states_of(port):
    import psutil
    return {c.status for c in psutil.net_connections("tcp") if c.laddr and c.laddr.port == port}


def test_ray_holders_get_left_over_advice():
    status = ports.PortStatus(ports.PlannedPort("gcs", 6379, "", "gcs_port"), errno.EADDRINUSE,
                              (ports.Holder(812, "gcs_server", "/x/ray/core/src/ray/gcs/gcs_server --log_dir=x"),))
    msg = str(ports.busy_message(status))
    assert "pid 812" in msg and "left over from an earlier run" in msg and "seedcore-boot stop" in msg


FREE_PORTS = """
import json, sys
from seedcore_boot.host import ports
from seedcore_boot.errors import BootError
avoid = set(json.loads(sys.argv[1]))
got = []
for _ in range(20):
    try:
        got.append(ports.free_port(avoid=avoid))
    except BootError:
        got.append(None)  # found none
print(json.dumps(got))
"""


def test_free_port_avoids_what_it_is_told_to(host):
    """On a host whose kernel hands out one port only (its own ip_local_port_range), that port is what
    free_port finds, every time; told to avoid it, free_port finds none rather than return it."""
    # Written from inside the host: a net sysctl applies to the writer's network namespace.
    assert host.run(["sh", "-c", "echo 40001 40001 > /proc/sys/net/ipv4/ip_local_port_range"]).returncode == 0
    assert json.loads(host.python(FREE_PORTS, "[]").stdout) == [40001] * 20  # the collision, forced
    assert json.loads(host.python(FREE_PORTS, "[40001]").stdout) == [None] * 20
    assert json.loads(host.python(FREE_PORTS, "[40002]").stdout) == [40001] * 20


def test_a_holders_command_line_with_newlines_stays_one_line():
    # `python -c "<a script>"` holding a port: its argument has newlines, and the busy message is one line.
    from seedcore_boot.host.ports import _short

    shown = _short("python -c \nimport socket\ns = socket.socket()\n" + "x" * 200)
    assert "\n" not in shown and shown.startswith("python -c import socket s = socket.socket()")
    assert len(shown) == 120 and shown.endswith("...")
