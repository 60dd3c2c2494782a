"""Ray's own words we read: its log files (raylogs.tail, shown when a node fails), raylet.out's drain lines and
their time stamps (drain.by_cluster), the raylet's --static_resource_list (components.resource_list)."""

import os
from types import SimpleNamespace

import pytest
from hypothesis import given, strategies as st

from seedcore_boot.config.settings import resolve
from seedcore_boot.node import drain
from seedcore_boot.ray import components, raylogs
from tests.props import any_text, result_or_boot_error

stamp = st.tuples(st.integers(0, 9999), st.integers(0, 99), st.integers(0, 99), st.integers(0, 99),
                  st.integers(0, 99), st.integers(0, 99)).map(
    lambda t: "[%04d-%02d-%02d %02d:%02d:%02d,840 I 41 41] " % t)
said = st.sampled_from(["Shutdown RPC has received", "Drain raylet RPC has received. Drain reason: ",
                        "Drain reason:", "[state-dump] NodeManager:", "", "\u00e9\x00\r"])
ray_line = st.one_of(st.tuples(st.one_of(stamp, st.just("")), said, any_text).map("".join), any_text)
log_bytes = st.one_of(st.lists(ray_line, max_size=8).map(lambda ls: "\n".join(ls).encode("utf-8", "surrogatepass")),
                      st.binary(max_size=200), st.just(b"x" * 70000 + b"\n\xff\xfe"))


@pytest.fixture(scope="module")
def temp_dir(scratch):
    os.makedirs(raylogs.logs_dir(scratch))
    return scratch


@given(log_bytes, st.integers(0, 300))
def test_any_log_file_has_a_tail_of_short_lines(temp_dir, data, lines):
    path = os.path.join(raylogs.logs_dir(temp_dir), "raylet.out")
    with open(path, "wb") as fh:
        fh.write(data)
    tail = raylogs.tail(path, lines)
    assert len(tail) <= lines and all(isinstance(l, str) and len(l) <= 400 for l in tail)
    assert [p for p, _ in raylogs.tails(temp_dir, names=("raylet.out",))] in ([path], [])


@given(log_bytes, st.floats(0, 2**33))
def test_any_raylet_out_gives_a_drain_verdict_or_none(temp_dir, data, since):
    with open(os.path.join(raylogs.logs_dir(temp_dir), "raylet.out"), "wb") as fh:
        fh.write(data)
    settings = resolve({}, {"SEEDCORE_BOOT_TEMP_DIR": temp_dir}).settings
    # No head address: the GCS is never asked (its answers are test_props_gcs.py's); raylet.out alone decides.
    sup = SimpleNamespace(head=None, node_ip="10.0.0.5")
    verdict = result_or_boot_error(drain.by_cluster, sup, settings, since)
    assert verdict is None or (isinstance(verdict, str) and "\n" not in verdict)


@given(ray_line)
def test_any_line_has_a_time_or_zero(line):
    stamp = drain._stamp(line)
    assert isinstance(stamp, (int, float)) and (stamp == 0 or line.startswith("["))


@given(st.one_of(any_text, st.lists(st.sampled_from(["CPU", "GPU", "memory", "object_store_memory", "1", "2.5",
                                                     "nan", "inf", "x", "1e999", ""]), max_size=8).map(
    lambda items: "--static_resource_list=" + ",".join(items))))
def test_any_static_resource_list_is_shown(arg):
    shown = components.resource_list(arg)
    assert isinstance(shown, str) and shown and "\n" not in shown
