"""What other processes leave or answer: our state and ready files after anyone edited them (state.py, status.py),
head and Redis addresses as users type them (config/addresses.py), a Redis port's replies (redisft._reply),
and any bytes on a port a health probe asks for HTTP (health.py)."""

import io
import json
import os
import socket
import threading

import pytest
from hypothesis import given, strategies as st

from seedcore_boot.config.addresses import parse_head_address, parse_redis_address
from seedcore_boot.config.settings import resolve
from seedcore_boot.host import state
from seedcore_boot.node import status
from seedcore_boot.ray import health, redisft
from tests.props import any_text, nested, result_or_boot_error

json_text = st.one_of(nested.map(lambda v: json.dumps(v, default=str)), any_text)
records = st.one_of(
    json_text,
    st.fixed_dictionaries({"pid": st.one_of(st.just("ME"), st.integers(-5, 2**64), nested)},
                          optional={"role": st.one_of(st.sampled_from(["head", "worker"]), nested),
                                    "ports": st.one_of(st.dictionaries(any_text, st.one_of(st.integers(-1, 70000),
                                                                                           nested), max_size=3),
                                                       nested),
                                    "dashboard_host": nested, "serve": nested, "ready": nested}).map(
        lambda r: json.dumps(r, default=str).replace('"ME"', str(os.getpid()))),
)


@given(records, records)
def test_any_node_and_ready_file_gives_a_status(scratch, node_text, ready_text):
    s = resolve({}, {"SEEDCORE_BOOT_TEMP_DIR": scratch}).settings
    os.makedirs(s.state_dir(), exist_ok=True)
    with open(state.node_file(s, "head"), "w") as fh:
        fh.write(node_text)
    with open(s.ready_path("head"), "w") as fh:
        fh.write(ready_text)
    for _, record in result_or_boot_error(state.running_nodes, s):
        assert state.node_record(record) == record
    name, _, ok, detail = state.ready_row(s, "head", os.getpid())
    assert ok in (True, False) and isinstance(detail, str)
    report = result_or_boot_error(status.check, s, mode="live")
    assert report.lines()


addresses = st.one_of(any_text, st.tuples(st.one_of(st.sampled_from(["ray-head", "a..b", "[::1]", "::1", "", "x" * 64,
                                                                     "10.0.0.5", "redis://h", "rediss://[fe80::1]",
                                                                     "caf\u00e9", "h@x"]), any_text),
                                          st.one_of(st.integers(-1, 70000).map(str), any_text)).map(":".join))


@given(addresses)
def test_any_head_or_redis_address_parses_or_is_one_usage_line(text):
    for parse in (parse_head_address, parse_redis_address):
        got = result_or_boot_error(parse, text)
        if isinstance(got, tuple) and ":" not in got[0]:
            got[0].encode("idna")  # how socket calls encode a name: UnicodeError for one they cannot take


@given(st.one_of(st.binary(max_size=30), st.tuples(st.sampled_from([b"+", b"-", b":", b"$", b"*", b""]),
                                                   st.binary(max_size=12), st.sampled_from([b"\r\n", b""])).map(
    b"".join)))
def test_any_redis_reply_is_a_value_a_redis_error_or_a_connection_error(data):
    # preflight turns RedisError and ConnectionError (an OSError) into its one line (test_odd_input.py)
    try:
        redisft._reply(io.BytesIO(data))
    except (redisft.RedisError, ConnectionError):
        pass


class Answers:
    """A loopback TCP server that answers each connection with the next bytes it is given, then closes."""

    def __init__(self):
        self.srv = socket.create_server(("127.0.0.1", 0))
        self.port = self.srv.getsockname()[1]
        self.answer = b""
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            try:
                conn, _ = self.srv.accept()
            except OSError:
                return
            with conn:
                try:
                    conn.recv(4096)
                    conn.sendall(self.answer)
                except OSError:
                    pass


@pytest.fixture(scope="module")
def peer():
    p = Answers()
    yield p
    p.srv.close()


http_like = st.one_of(st.binary(max_size=60), st.tuples(
    st.sampled_from([b"HTTP/1.1 200 OK", b"HTTP/1.0 500 x", b"HTTP/1.1 abc", b"HTTP/9 200", b"SSH-2.0-x", b""]),
    st.lists(st.sampled_from([b"Content-Length: 3", b"Content-Length: 99", b"Content-Length: x",
                              b"Transfer-Encoding: chunked", b"X: \xff"]), max_size=2),
    st.binary(max_size=20)).map(lambda t: t[0] + b"\r\n" + b"".join(h + b"\r\n" for h in t[1]) + b"\r\n" + t[2]))


@given(http_like)
def test_any_answer_to_a_health_probe_is_ok_or_a_reason(peer, answer):
    peer.answer = answer
    ok, detail = health.Probe("agent", f"http://127.0.0.1:{peer.port}/x").once(timeout=5)
    assert ok in (True, False) and isinstance(detail, str)
    assert health._is_version(200, answer.decode("utf-8", "replace")) in (True, False)
