"""GCS replies (gcsprobe.py decodes protobuf by hand): whatever answers on the GCS port may send any bytes;
well-formed messages with any field numbers, wire types and values; and replies built with Ray's own protobuf
classes from the installed wheel, which must decode to what they say."""

from hypothesis import given, strategies as st

from seedcore_boot.ray import gcsprobe, protowire
from tests.props import result_or_boot_error


def varint(n):
    return protowire.encode_varint(n)


@st.composite
def messages(draw, depth=2):
    """Protobuf wire format with plausible field numbers (those we read among them) and any values."""
    out = b""
    for _ in range(draw(st.integers(0, 5))):
        num = draw(st.sampled_from([1, 2, 5, 7, 23, 29, 3, 100]))
        wire = draw(st.sampled_from([0, 0, 2, 2, 2, 1, 5, 3]))
        if wire == 0:
            out += varint(num << 3) + varint(draw(st.integers(0, 2**64)))
        elif wire == 2:
            inner = draw(messages(depth - 1)) if depth and draw(st.booleans()) else draw(st.binary(max_size=12))
            out += varint(num << 3 | 2) + varint(len(inner)) + inner
        else:
            out += varint(num << 3 | wire) + draw(st.binary(min_size=0, max_size=9))
    return out


replies = st.one_of(st.binary(max_size=40), messages(), messages().map(lambda m: m[:-1]))


@given(replies)
def test_any_check_alive_reply_is_healthy_or_not(reply):
    ok, detail, version, _ = gcsprobe.check_alive_reply(reply)
    assert ok in (True, False) and isinstance(detail, str) and (version is None or isinstance(version, str))


@given(replies, st.sampled_from(["", "10.0.0.5"]), st.sampled_from([0, 6380]))
def test_any_get_all_node_info_reply_is_nodes_or_a_gcs_error(reply, node_ip, port):
    nodes = result_or_boot_error(gcsprobe.nodes_reply, reply, node_ip, port)
    if isinstance(nodes, list):
        assert all(isinstance(n[0], str) and n[1] in (True, False) for n in nodes)


@given(replies)
def test_any_drain_and_kv_reply_is_read_or_a_gcs_error(reply):
    result_or_boot_error(gcsprobe.drain_reply, reply)
    versions = gcsprobe.versions_reply(reply)
    assert versions is None or all(isinstance(v, str) for v in versions)


@given(st.binary(max_size=28), st.text(max_size=20), st.integers(1, 65535), st.booleans(), st.integers(0, 4),
       st.integers(0, 2**41))
def test_rays_own_get_all_node_info_reply_decodes_to_what_it_says(node_id, address, port, dead, reason, start):
    from ray.core.generated import gcs_pb2, gcs_service_pb2

    info = gcs_pb2.GcsNodeInfo(node_id=node_id, node_manager_address=address, node_manager_port=port,
                               start_time_ms=start, state=gcs_pb2.GcsNodeInfo.DEAD if dead else 0)
    info.death_info.reason = reason
    reply = gcs_service_pb2.GetAllNodeInfoReply(node_info_list=[info]).SerializeToString()
    assert gcsprobe.nodes_reply(reply, address, port) == [(node_id.hex(), not dead, start, reason)]
