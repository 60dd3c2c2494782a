"""The pure parts of riding out a partition: Ray's death threshold, and the watch's state machine."""

import pytest

from seedcore_boot.config.settings import resolve
from seedcore_boot.errors import BootError
from seedcore_boot.node import rayenv
from seedcore_boot.node.headwatch import UNKNOWN_NODE_CHECKS, HeadLost, Probe, Watch
from seedcore_boot.ray import gcsprobe, raydeath
from tests.skips import need_module

gcs_service_pb2 = need_module("ray.core.generated.gcs_service_pb2")


def test_rays_defaults_give_65_s():
    t = raydeath.threshold({})
    assert (t.period_ms, t.timeout_ms, t.failures) == (3000, 10000, 5)
    assert t.seconds == 65 and "Ray's defaults" in t.describe()


def test_env_then_the_heads_system_config_as_ray_applies_them():
    env = {"RAY_health_check_period_ms": "1000", "RAY_health_check_failure_threshold": "3"}
    assert raydeath.threshold(env).seconds == 3 * (10 + 1)
    # RayConfig::initialize applies the system config over what the environment gave
    both = raydeath.threshold(env, '{"health_check_timeout_ms": 2000, "object_spilling_config": "{}"}')
    assert both.seconds == 3 * (2 + 1) and "system config" in both.source and "env" in both.source
    assert raydeath.threshold({}, "").seconds == 65


@pytest.mark.parametrize("raw", ["0", "-1", "soon"])
def test_a_bad_health_check_value_is_a_usage_error(raw):
    with pytest.raises(BootError) as err:
        raydeath.threshold({"RAY_health_check_period_ms": raw})
    assert err.value.exit_code == 2 and "RAY_health_check_period_ms" in str(err.value)


def test_the_raylet_outlasts_our_wait_unless_the_user_set_the_timeout():
    worker = resolve({}, {}, role="worker").settings
    assert worker.head_lost_timeout is None
    assert rayenv.additions(worker, "worker")["RAY_gcs_rpc_server_reconnect_timeout_s"] == "75"
    slower = {"RAY_health_check_failure_threshold": "10"}
    assert rayenv.additions(worker, "worker", env=slower)["RAY_gcs_rpc_server_reconnect_timeout_s"] == "140"
    told = resolve({}, {"SEEDCORE_BOOT_HEAD_LOST_TIMEOUT": "10"}, role="worker").settings
    assert rayenv.additions(told, "worker")["RAY_gcs_rpc_server_reconnect_timeout_s"] == "10"


CLUSTER = "78df9be1430c42019792dbec3db441bf4126835ef1d6183573812e9b"
UP = Probe(True, "healthy", CLUSTER, True)
DOWN = Probe(False, "deadline_exceeded: Deadline Exceeded")


def _watch(wait_s=65.0):
    return Watch("10.200.0.1:6379", wait_s, "as Ray would (test)", CLUSTER, now=0.0, wall=0.0)


def _said(w):
    out, w.said[:] = list(w.said), []
    return out


def test_a_cut_shorter_than_rays_threshold_is_said_once_and_healed():
    w = _watch()
    w.observe(UP, 1, 1)
    for t in range(2, 60):
        w.observe(DOWN, t, t)
        assert w.check(t) is None
    said = _said(w)
    assert len(said) == 1 and said[0][0] == "warn"
    assert "unreachable since" in said[0][1] and "waiting up to 65 s as Ray would" in said[0][1]
    w.observe(UP, 60, 60)
    (level, line), = _said(w)
    assert level == "event" and "reachable again after 59 s; this node is ALIVE" in line
    assert w.check(61) is None and w.lost is None
    w.observe(UP, 62, 62)
    assert _said(w) == []


def test_a_cut_as_long_as_rays_threshold_ends_the_worker():
    w = _watch()
    w.observe(UP, 1, 1)
    for t in range(2, 66):
        w.observe(DOWN, t, t)
        assert w.check(t) is None
    w.observe(DOWN, 66, 66)
    assert isinstance(w.lost, HeadLost) and "is gone since" in str(w.lost)
    assert w.check(66) is w.lost and w.lost.exit_code == 1


def test_ray_dying_during_a_cut_is_the_lost_head():
    w = _watch()
    w.observe(DOWN, 5, 5)
    assert w.check(5) is None and "gone since" in str(w.check(5, dying=True))
    assert _watch().check(5, dying=True) is None  # a head that answers is not the news


def test_another_cluster_at_the_address_ends_the_worker_at_once():
    w = _watch()
    w.observe(DOWN, 1, 1)
    w.observe(Probe(True, "healthy", "a" * 56, False), 20, 20)
    assert "another cluster" in str(w.lost) and "joins the new cluster" in w.lost.hint
    assert w.check(20) is w.lost


def test_a_head_that_no_longer_holds_this_node_alive_ends_it_within_two_checks():
    w = _watch()
    w.observe(UP, 1, 1)
    forgot = Probe(True, "healthy", CLUSTER, False)
    for t in range(2, 2 + UNKNOWN_NODE_CHECKS - 1):
        w.observe(forgot, t, t)
        assert w.lost is None
    w.observe(forgot, 9, 9)
    assert "does not hold this node ALIVE" in str(w.lost)


def test_before_the_node_registered_an_unknown_node_is_normal():
    w = _watch()
    for t in range(1, 10):
        w.observe(Probe(True, "healthy", CLUSTER, False), t, t)
    assert w.lost is None


def test_the_same_cluster_back_on_redis_keeps_the_worker():
    w = _watch()
    w.observe(UP, 1, 1)
    for t in range(2, 40):
        w.observe(DOWN, t, t)
    w.observe(UP, 40, 40)  # the same cluster id, the node still ALIVE: Redis brought the cluster back
    assert w.lost is None and w.check(41) is None


def test_the_user_timeout_is_the_wait():
    w = _watch(wait_s=10)
    w.observe(DOWN, 5, 5)
    w.observe(DOWN, 10, 10)
    assert "is gone since" in str(w.lost)


def test_check_alive_about_a_raylet_encodes_and_decodes_as_ray_does(monkeypatch):
    sent = []

    def call(ip, port, method, request, timeout):
        sent.append(gcs_service_pb2.CheckAliveRequest.FromString(request))
        return gcs_service_pb2.CheckAliveReply(ray_version="2.20.0", raylet_alive=[True, False]).SerializeToString()

    monkeypatch.setattr(gcsprobe, "_call", call)
    alive = gcsprobe.check_alive("10.200.0.1", 6379, 1, ("10.200.0.2:6380", "10.200.0.9:6380"))
    assert list(sent[0].raylet_address) == ["10.200.0.2:6380", "10.200.0.9:6380"]
    assert alive.ok and alive.version == "2.20.0" and alive.raylet_alive == (True, False)


def test_cluster_id_and_internal_config_are_read_from_rays_replies(monkeypatch):
    cid = bytes.fromhex(CLUSTER)
    replies = {"/ray.rpc.NodeInfoGcsService/GetClusterId": gcs_service_pb2.GetClusterIdReply(cluster_id=cid),
               "/ray.rpc.NodeInfoGcsService/GetInternalConfig":
                   gcs_service_pb2.GetInternalConfigReply(config='{"health_check_period_ms": 1000}')}
    monkeypatch.setattr(gcsprobe, "_call", lambda ip, port, method, req, t: replies[method].SerializeToString())
    assert gcsprobe.cluster_id("h", 1) == CLUSTER
    assert raydeath.threshold({}, gcsprobe.internal_config("h", 1)).seconds == 5 * 11


def test_when_ray_dies_one_answer_that_forgets_this_node_is_the_cause():
    w = _watch()
    w.observe(UP, 1, 1)
    w.observe(Probe(True, "healthy", CLUSTER, False), 2, 2, dying=True)
    assert "does not hold this node ALIVE" in str(w.check(2, dying=True))


def test_the_wait_is_the_users_timeout_or_what_the_heads_settings_give(monkeypatch):
    from seedcore_boot.node import headwait

    monkeypatch.setattr(headwait, "cluster_id", lambda ip, port: CLUSTER)
    monkeypatch.setattr(headwait, "internal_config", lambda ip, port: '{"health_check_failure_threshold": 2}')
    wait, why, cluster = headwait.head_patience(resolve({}, {}, role="worker").settings, {}, "h", 1)
    assert (wait, cluster) == (2 * 13, CLUSTER) and why.startswith("as Ray would (") and "system config" in why
    told = resolve({}, {"SEEDCORE_BOOT_HEAD_LOST_TIMEOUT": "10"}, role="worker").settings
    assert headwait.head_patience(told, {}, "h", 1) == (10, "(head_lost_timeout)", CLUSTER)

