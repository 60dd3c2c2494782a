import socket

import pytest

from seedcore_boot.config import addresses
from seedcore_boot.errors import BootError
from seedcore_boot.node import headwait, headwatch
from seedcore_boot.ray import gcsprobe, protowire


@pytest.mark.parametrize("text,expected", [
    ("ray-head:6379", ("ray-head", 6379)), ("10.0.0.1:1", ("10.0.0.1", 1)), ("[::1]:6379", ("::1", 6379)),
])
def test_good_addresses(text, expected):
    assert addresses.parse_head_address(text) == expected


@pytest.mark.parametrize("text", ["", "ray-head", "ray-head:", ":6379", "ray-head:0", "ray-head:70000",
                                  "http://ray-head:8265", "auto", "ray head:6379", "::1:6379", "[::1]6379"])
def test_malformed_addresses_are_usage_errors(text):
    with pytest.raises(BootError) as err:
        addresses.parse_head_address(text)
    assert err.value.exit_code == 2 and "HOST:PORT" in str(err.value)


def test_check_alive_reply_is_decoded():
    # CheckAliveReply{status: {code: 0}, ray_version: "2.20.0"}, as the GCS sends it
    version = b"2.20.0"
    reply = b"\x0a\x00" + b"\x12" + bytes([len(version)]) + version
    fields = dict(protowire.fields(reply))
    assert fields[2] == version and dict(protowire.fields(fields[1])) == {}
    unhealthy = b"\x0a\x06\x08\x05\x12\x02no"
    assert dict(protowire.fields(dict(protowire.fields(unhealthy))[1])) == {1: 5, 2: b"no"}


def test_a_port_that_is_not_a_gcs_is_not_healthy():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    port = srv.getsockname()[1]
    try:
        ok, detail, version = gcsprobe.check_gcs("127.0.0.1", port, timeout=1.0)
    finally:
        srv.close()
    assert not ok and version is None and detail


def test_the_wait_gives_up_on_its_deadline_with_the_address():
    class Quiet:
        def event(self, *a, **k):
            pass

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    port = srv.getsockname()[1]
    srv.close()  # nothing listens there now
    with pytest.raises(BootError) as err:
        headwait.wait_for_head(f"127.0.0.1:{port}", 1.0, lambda s: __import__("time").sleep(s), Quiet())
    assert err.value.exit_code == 1 and f"127.0.0.1:{port}" in str(err.value) and "last error" in str(err.value)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Quiet:
    def __init__(self):
        self.lines = []

    def event(self, phase, msg, **k):
        self.lines.append(msg)

    warn = event


def test_head_watch_reports_a_head_that_stops_answering():
    """A real gRPC probe against a port nobody listens on: the head is gone once the wait has passed,
    and at the first failed answer when Ray is dying anyway; the cut is said once."""
    import time

    port = _free_port()  # the head the wait saw healthy is gone now: nobody listens there
    log = _Quiet()
    watch = headwatch.HeadWatch("ray-head", port, "127.0.0.1", 1.0, "test", "", log, headwait.resolve,
                                interval=0.1)
    try:
        watch.check()  # no answer has failed yet, or not for long: nothing to say
        end = time.monotonic() + 10
        while watch.watch.last_error is None and time.monotonic() < end:
            time.sleep(0.05)
        with pytest.raises(headwatch.HeadLost) as err:
            watch.check(dying=True)
        assert f"the head at ray-head:{port} is gone since" in str(err.value) and err.value.exit_code == 1
        while time.monotonic() < end:
            try:
                watch.check()
            except headwatch.HeadLost:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the head was never reported lost")
        assert [l for l in log.lines if "unreachable since" in l] == log.lines[:1] and len(log.lines) == 1
    finally:
        watch.close()


def test_kv_get_request_encodes_like_protobuf():
    request = protowire.bytes_field(1, b"CLUSTER_METADATA") + protowire.bytes_field(2, b"cluster")
    assert dict(protowire.fields(request)) == {1: b"CLUSTER_METADATA", 2: b"cluster"}
    assert protowire.encode_varint(300) == b"\xac\x02"


def test_versions_must_match_to_the_python_patch():
    import platform

    headwait.check_versions("h:6379", (headwait.RAY_VERSION, platform.python_version()))
    headwait.check_versions("h:6379", None)  # an unreadable entry: Ray's own check still runs at join
    with pytest.raises(BootError) as err:
        headwait.check_versions("h:6379", (headwait.RAY_VERSION, "3.11.0"))
    assert "Python 3.11.0" in str(err.value) and f"Python {platform.python_version()}" in str(err.value)
    assert err.value.exit_code == 1


def test_the_watch_resolves_the_heads_name_again_and_falls_back_to_the_last_address():
    watch = headwatch.HeadWatch("localhost", 1, "10.9.9.9", 10, "test", "", _Quiet(), headwait.resolve,
                                interval=3600)
    try:
        assert watch.current_ip() in ("127.0.0.1", "::1")  # a head pod back with another IP is found
        watch.host = "no-such-head.invalid"  # a Service without Ready endpoints: no name for a moment
        assert watch.current_ip() == "10.9.9.9"
    finally:
        watch.close()


class _Clock:
    """headwait's clock, driven by the wait's own sleeps (each one a minute), so that hours pass in a second:
    the refusals are real (a closed port on loopback), only time is sped up."""

    def __init__(self, limit):
        self.now, self.limit = 1000.0, limit

    def monotonic(self):
        return self.now

    def sleep(self, seconds):
        self.now += 60
        if self.now - 1000.0 > self.limit:
            raise _Observed()


class _Observed(Exception):
    pass


@pytest.mark.parametrize("timeout,gives_up", [(0, False), (300, True)])
def test_wait_timeout_0_never_gives_up(monkeypatch, timeout, gives_up):
    """0 waits forever (docs): still asking after 3 hours, past the 300 s default, which gives up."""
    class Quiet:
        def event(self, *a, **k):
            pass

    clock = _Clock(limit=3 * 3600)
    monkeypatch.setattr(headwait.time, "monotonic", clock.monotonic)
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    port = srv.getsockname()[1]
    srv.close()  # nothing listens there now
    with pytest.raises(BootError if gives_up else _Observed):
        headwait.wait_for_head(f"127.0.0.1:{port}", timeout, clock.sleep, Quiet())
