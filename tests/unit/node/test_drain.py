"""The pure parts of a worker's drain: the hand-encoded GCS messages against Ray's own protobuf classes,
Serve's patched node cache on Ray's real class, the Serve actors found by process title, and where the
setup hook is set."""

import subprocess
import sys
import time

import pytest

from seedcore_boot.config.settings import resolve
from seedcore_boot.node import drain, rayenv
from seedcore_boot.ray import gcsprobe
from seedcore_boot.serve import servedrain
from tests.skips import need_module

gcs_pb2 = need_module("ray.core.generated.gcs_pb2")
from ray.core.generated import autoscaler_pb2, gcs_service_pb2  # noqa: E402

ME, OTHER = "ab" * 28, "cd" * 28  # node ids are 28 bytes


def test_drain_request_is_what_ray_decodes():
    raw = gcsprobe.drain_request(ME, "seedcore-boot worker stopping (SIGTERM)", 1_800_000_000_123)
    req = autoscaler_pb2.DrainNodeRequest.FromString(raw)
    assert req.node_id.hex() == ME
    assert req.reason == autoscaler_pb2.DrainNodeReason.Value("DRAIN_NODE_REASON_PREEMPTION")
    assert req.reason_message == "seedcore-boot worker stopping (SIGTERM)"
    assert req.deadline_timestamp_ms == 1_800_000_000_123


def _node(node_hex, ip, port, dead=False):
    info = gcs_pb2.GcsNodeInfo(node_id=bytes.fromhex(node_hex), node_manager_address=ip, node_manager_port=port,
                               state=gcs_pb2.GcsNodeInfo.DEAD if dead else gcs_pb2.GcsNodeInfo.ALIVE)
    info.resources_total["CPU"] = 1.0  # a map: repeated entries on the wire
    return info


def test_node_id_is_read_from_the_reply_ray_sends(monkeypatch):
    reply = gcs_service_pb2.GetAllNodeInfoReply(node_info_list=[
        _node(OTHER, "10.200.0.2", 6380, dead=True),  # this node's earlier life, same address
        _node(ME, "10.200.0.2", 6380),
        _node("ef" * 28, "10.200.0.3", 6380),
    ]).SerializeToString()
    monkeypatch.setattr(gcsprobe, "_call", lambda *a: reply)
    assert gcsprobe.node_id("10.200.0.1", 6379, "10.200.0.2", 6380) == ME
    assert gcsprobe.node_id("10.200.0.1", 6379, "10.200.0.9", 6380) is None


def test_drain_reply_is_decoded(monkeypatch):
    refused = autoscaler_pb2.DrainNodeReply(is_accepted=False, rejection_reason_message="busy").SerializeToString()
    monkeypatch.setattr(gcsprobe, "_call", lambda *a: refused)
    assert gcsprobe.drain_node("h", 1, ME, "x", 1) == (False, "busy")
    monkeypatch.setattr(gcsprobe, "_call", lambda *a: autoscaler_pb2.DrainNodeReply(is_accepted=True)
                        .SerializeToString())
    assert gcsprobe.drain_node("h", 1, ME, "x", 1) == (True, "")


def test_a_gcs_that_does_not_answer_is_a_gcs_error():
    with pytest.raises(gcsprobe.GcsError, match="GetAllNodeInfo to 127.0.0.1:1 failed"):
        gcsprobe.node_id("127.0.0.1", 1, "127.0.0.1", 6380, timeout=0.5)


# In a fresh interpreter, as in a Ray worker: the hook, then Serve's module imported later (the controller).
HOOKED = r"""
import json, sys
from seedcore_boot.serve import servedrain
import ray
ray.__version__ = sys.argv[1]
servedrain.install()
servedrain.install()  # Ray may call it again in the same process: harmless
assert "ray.serve._private.cluster_node_info_cache" not in sys.modules  # nothing of Serve's imported early
import ray._private.state
from ray.core.generated.gcs_pb2 import GcsNodeInfo
A, B, DEAD = (bytes([i]) * 28 for i in (0xAA, 0xBB, 0xDD))
# What the GCS tells the controller: node A draining, B not, DEAD draining but gone.
ray._private.state.state.get_draining_nodes = lambda: {A.hex(): 123, DEAD.hex(): 456}
ray._private.state.available_resources_per_node = lambda: {}
class Gcs:
    def get_all_node_info(self, timeout=None):
        node = lambda state: {"state": state, "node_name": b"n", "labels": {}, "resources": {}}
        return {A: node(GcsNodeInfo.ALIVE), B: node(GcsNodeInfo.ALIVE), DEAD: node(GcsNodeInfo.DEAD)}
from ray.serve._private import cluster_node_info_cache as m
cache = m.DefaultClusterNodeInfoCache(Gcs())
cache.update()
short = lambda ids: sorted(i[:2] for i in ids)
print(json.dumps({"draining": {k[:2]: v for k, v in cache.get_draining_nodes().items()},
                  "active": short(cache.get_active_node_ids())}))
"""


def _hooked(version):
    out = subprocess.run([sys.executable, "-c", HOOKED, version], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout.strip().splitlines()[-1]


def test_the_hook_makes_serve_see_draining_nodes_on_ray_2_20_only():
    assert _hooked("2.20.0") == '{"draining": {"aa": 123}, "active": ["bb"]}'
    # Any other Ray: Serve is left exactly as shipped (no draining nodes, every alive node active).
    assert _hooked("2.21.0") == '{"draining": {}, "active": ["aa", "bb"]}'


def test_draining_nodes_keep_only_alive_ones():
    assert servedrain.draining_nodes({"a"}, read=lambda: {"a": 1, "b": 2}) == {"a": 1}


def test_serve_actors_are_found_by_their_process_titles():
    # Ray titles an actor's worker process ray::<class>[.<method>]; these children carry such titles.
    titles = ["ray::ServeReplica:slow:Slow", "ray::ProxyActor.ready", "ray::IDLE", "ray::Counter"]
    children = [subprocess.Popen([t, "-c", "import time; time.sleep(30)"], executable=sys.executable)
                for t in titles]
    try:
        import psutil

        procs = [psutil.Process(c.pid) for c in children]
        time.sleep(0.2)
        assert sorted(drain.serve_actors(procs)) == ["ProxyActor", "ServeReplica:slow:Slow"]
        children[0].kill()
        children[0].wait()
        assert drain.serve_actors(procs) == ["ProxyActor"]
    finally:
        for c in children:
            c.kill()
            c.wait()


def test_the_setup_hook_goes_to_the_head_only_when_its_workers_can_import_it():
    on = resolve({}, {}).settings
    assert rayenv.additions(on, "head")[servedrain.HOOK_ENV] == servedrain.HOOK
    assert servedrain.HOOK_ENV not in rayenv.additions(on, "worker")
    assert servedrain.HOOK_ENV not in rayenv.additions(on, "head", ours=False)  # a `ray` of another Python
    off = resolve({}, {"SEEDCORE_BOOT_SERVE_DRAIN": "false"}).settings
    assert servedrain.HOOK_ENV not in rayenv.child_env(off, "head", {})


class _RunningSup:
    """A supervisor whose node is up; looking at its processes fails the test (the drain must not)."""
    proc, returncode, node_ip = object(), None, "10.200.0.2"

    def descendants(self):
        raise AssertionError("the drain looked for Serve actors")


def test_no_drain_when_it_is_off_or_there_is_no_node_yet():
    s = resolve({"drain_timeout": "0"}, {}).settings
    assert drain.drain(_RunningSup(), s, log=None, why="SIGTERM") is True
    s = resolve({}, {}).settings
    not_started = _RunningSup()
    not_started.proc = None  # SIGTERM before `ray start`
    assert drain.drain(not_started, s, log=None, why="SIGTERM") is True


def test_stop_waits_for_a_worker_as_long_as_its_drain_and_stop_may_take():
    from seedcore_boot.host.leftovers import stop_budget

    s = resolve({}, {}).settings
    assert stop_budget(s, "worker") == 45 + 8 + 5
    assert stop_budget(s, "head") == 30  # as before workers drained
    assert stop_budget(resolve({"drain_timeout": "0"}, {}).settings, "worker") == 30


# --- a drain someone else asked for (drain.by_cluster) ----------------------------------------------------
def _dead(node_hex, start_ms, reason=None):
    info = _node(node_hex, "10.200.0.2", 6380, dead=True)
    info.start_time_ms = start_ms
    if reason:
        info.death_info.reason = gcs_pb2.NodeDeathInfo.Reason.Value(reason)
    return info


def test_nodes_at_an_address_come_newest_first_with_their_death_reason(monkeypatch):
    reply = gcs_service_pb2.GetAllNodeInfoReply(node_info_list=[
        _dead(OTHER, 1000), _dead(ME, 2000, "AUTOSCALER_DRAIN_IDLE"), _node("ef" * 28, "10.200.0.3", 6380),
    ]).SerializeToString()
    monkeypatch.setattr(gcsprobe, "_call", lambda *a: reply)
    assert gcsprobe.nodes_at("h", 1, "10.200.0.2", 6380) == [(ME, False, 2000, 4), (OTHER, False, 1000, 0)]
    assert gcsprobe.DEATH_REASONS[4] == "idle termination" and 4 in gcsprobe.DRAINED


class _DeadSup:
    node_ip, head = "10.200.0.2", None


def _raylet_out(tmp_path, lines):
    logs = tmp_path / "session_latest" / "logs"
    logs.mkdir(parents=True)
    (logs / "raylet.out").write_text("\n".join(lines) + "\n")
    return resolve({"temp_dir": str(tmp_path), "head_address": "127.0.0.1:1"}, {}).settings


def _stamp(seconds_ago):
    return time.strftime("[%Y-%m-%d %H:%M:%S,000 I 41 41]", time.localtime(time.time() - seconds_ago))


def test_a_gcs_shutdown_is_a_drain_by_the_cluster(tmp_path, monkeypatch):
    # Ray 2.20's autoscaler v1 (drain_nodes_via_gcs): the GCS records no reason; the raylet logs the RPC.
    s = _raylet_out(tmp_path, [f"{_stamp(1)} node_manager.cc:1932: Shutdown RPC has received. Shutdown will "
                               "happen after the RPC is replied."])
    monkeypatch.setattr(gcsprobe, "nodes_at", lambda *a, **k: [(ME, False, 2000, 0)])
    said = drain.by_cluster(_DeadSup(), s, since=time.time() - 60)
    assert said.startswith("this node was drained by the cluster (no reason given)") and "DrainNode" in said


def test_a_drain_request_names_its_reason_from_the_gcs_and_the_raylet(tmp_path, monkeypatch):
    s = _raylet_out(tmp_path, [f"{_stamp(1)} node_manager.cc:1900: Drain raylet RPC has received. Deadline is 1. "
                               "Drain reason: idle for 60 s", f"{_stamp(1)} The node is drained, exiting..."])
    monkeypatch.setattr(gcsprobe, "nodes_at", lambda *a, **k: [(ME, False, 2000, 4)])
    said = drain.by_cluster(_DeadSup(), s, since=time.time() - 60)
    assert "(idle termination, 'idle for 60 s')" in said


def test_a_crash_is_not_a_drain_nor_is_an_earlier_lifes_log(tmp_path, monkeypatch):
    # The container restarted in its pod: the same session dir holds the raylet.out of its earlier life.
    s = _raylet_out(tmp_path, [f"{_stamp(600)} node_manager.cc:1932: Shutdown RPC has received."])
    monkeypatch.setattr(gcsprobe, "nodes_at", lambda *a, **k: [(ME, True, 2000, 0)])  # not even dead yet
    assert drain.by_cluster(_DeadSup(), s, since=time.time() - 60) is None
    # Without an answer from the GCS the raylet's own words decide, and here they say nothing.
    monkeypatch.setattr(gcsprobe, "nodes_at", lambda *a, **k: (_ for _ in ()).throw(gcsprobe.GcsError("down")))
    assert drain.by_cluster(_DeadSup(), s, since=time.time() - 60) is None
