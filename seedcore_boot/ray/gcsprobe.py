"""The GCS calls a worker makes itself, over plain gRPC with hand-encoded protobuf, so the supervisor never
imports ray (the import alone takes about a second).

Before `ray start`: CheckAlive (NodeInfoGcsService) is what `ray start` itself uses to probe a GCS;
InternalKVGet reads the cluster metadata Ray checks at join time; GetClusterId and GetInternalConfig
tell which cluster the worker joins and the head's system config (its health-check settings), and the
head watch (headwatch.py) asks CheckAlive about this node. At a drain (drain.py): GetAllNodeInfo
finds this node's id, DrainNode (AutoscalerStateService, what Ray's hidden `ray drain-node` sends) marks it
draining. Field numbers are from the wheel's generated gcs_service_pb2 / gcs_pb2 / autoscaler_pb2; the unit
tests decode replies built with those classes.

With TLS on (tls/nodetls.py) every call speaks mutual TLS with the node's own certificate, as Ray's processes do;
handshake_failure() turns a handshake that failed into its cause.
"""

import importlib
import json
import os
import sys
from typing import NamedTuple, Optional

from ..config.addresses import host_port
from ..errors import BootError
from . import protowire

_CHECK_ALIVE = "/ray.rpc.NodeInfoGcsService/CheckAlive"  # the call `ray start` itself uses to probe the GCS


def check_gcs(ip, port, timeout):
    """(healthy, detail, ray_version): the GCS answers CheckAlive with status OK, not merely TCP."""
    alive = check_alive(ip, port, timeout)
    return alive.ok, alive.detail, alive.version


class Alive(NamedTuple):
    ok: bool
    detail: str
    version: Optional[str]
    raylet_alive: tuple = ()  # one bool per raylet address asked about


def check_alive(ip, port, timeout, raylets=()):
    """CheckAlive, optionally about raylets ("IP:PORT"): CheckAliveRequest raylet_address 1 (repeated string);
    CheckAliveReply status 1, ray_version 2, raylet_alive 3 (repeated bool, packed). The GCS answers
    whether each address ("IP:node_manager_port", measured) is a node it holds ALIVE; the raylet itself asks
    this about its own address every raylet_liveness_self_check_interval_ms (5 s). Our calls carry no cluster
    id, so a new GCS answers them (the raylet's, which carry one, it refuses)."""
    grpc = _grpc()

    request = b"".join(protowire.bytes_field(1, r.encode()) for r in raylets)
    try:
        reply = _call(ip, port, _CHECK_ALIVE, request, timeout)
    except grpc.RpcError as exc:
        code = _code(exc)
        detail = (exc.details() or "").split("\n")[0] if hasattr(exc, "details") else ""
        return Alive(False, f"{code}: {detail}" if detail else code, None)
    return check_alive_reply(reply)


def check_alive_reply(reply):
    """Alive of CheckAliveReply bytes: status 1 (code 1, message 2), ray_version 2, raylet_alive 3."""
    try:
        pairs = protowire.fields(reply)
        fields = dict(pairs)
        status = dict(protowire.fields(protowire.bytes_of(fields, 1)))
        version = protowire.bytes_of(fields, 2).decode()
        code, message = protowire.number_of(status, 1), protowire.bytes_of(status, 2).decode(errors="replace")
        alive = []
        for num, val in pairs:
            if num == 3:  # packed (bytes of varints) as Ray's C++ sends it, or one varint per element
                alive += [bool(b) for b in val] if isinstance(val, bytes) else [bool(val)]
    except ValueError:  # UnicodeDecodeError is one
        return Alive(False, "the GCS port answered, but not like a Ray GCS", None)
    if code != 0:
        return Alive(False, f"GCS unhealthy: {message}", version)
    return Alive(True, "healthy", version, tuple(alive))


_CLUSTER_ID = "/ray.rpc.NodeInfoGcsService/GetClusterId"
_INTERNAL_CONFIG = "/ray.rpc.NodeInfoGcsService/GetInternalConfig"


def cluster_id(ip, port, timeout=3.0):
    """The cluster's id (hex): made by a GCS that starts a new cluster, kept in Redis with fault tolerance,
    so a head restarted on Redis keeps it and a new cluster at the same address has another.
    GetClusterIdReply: status 1, cluster_id 2 (bytes). Raises GcsError."""
    return _reply_bytes(_rpc(ip, port, _CLUSTER_ID, b"", timeout), "the GCS", "GetClusterId").hex()


def internal_config(ip, port, timeout=3.0):
    """The head's system config (JSON text, "" when none), as every raylet gets it at registration.
    GetInternalConfigReply: status 1, config 2 (string). Raises GcsError."""
    config = _reply_bytes(_rpc(ip, port, _INTERNAL_CONFIG, b"", timeout), "the GCS", "GetInternalConfig")
    try:
        return config.decode()
    except UnicodeDecodeError:
        raise GcsError("the GCS answered GetInternalConfig with something we cannot read") from None


def _reply_bytes(reply, who, call):
    """Field 2 of a reply (status 1, then the value: GetClusterId, GetInternalConfig, InternalKVGet) as bytes,
    b"" when absent; GcsError when the reply is no such message."""
    try:
        return protowire.bytes_of(dict(protowire.fields(reply)), 2)
    except ValueError:
        raise GcsError(f"{who} answered {call} with something we cannot read") from None


_KV_GET = "/ray.rpc.InternalKVGcsService/InternalKVGet"


def _call(ip, port, method, request, timeout):
    """The raw reply of one unary call; raises grpc.RpcError."""
    grpc = _grpc()
    target = host_port(ip, port)
    options = [("grpc.enable_http_proxy", 0)]
    if _tls is None:
        channel = grpc.insecure_channel(target, options=options)
    else:
        if _tls.server_name:  # check the head's certificate against the name Ray's raylet dials, not our IP
            options.append(("grpc.ssl_target_name_override", _tls.server_name))
        credentials = grpc.ssl_channel_credentials(root_certificates=_tls.pem[2], private_key=_tls.pem[1],
                                                   certificate_chain=_tls.pem[0])
        channel = grpc.secure_channel(target, credentials, options=options)
    with channel:
        return channel.unary_unary(method)(request, timeout=timeout)


def _grpc():
    """grpc, imported with its core's logging at ERROR unless the user chose a level: a failed TLS handshake is
    otherwise an INFO line of gRPC's on our stderr ("ssl_transport_security.cc ... Handshake failed") before
    our own one line, and once a second from the head watch. gRPC reads the level once, at import (measured);
    the variable is removed again at once, so nothing we start sees it."""
    if "grpc" not in sys.modules and "GRPC_VERBOSITY" not in os.environ:
        os.environ["GRPC_VERBOSITY"] = "ERROR"
        try:
            return importlib.import_module("grpc")
        finally:
            os.environ.pop("GRPC_VERBOSITY", None)
    return importlib.import_module("grpc")


class _Tls(NamedTuple):
    paths: tuple  # cert, key, CA
    pem: tuple
    server_name: Optional[str]


_tls: Optional[_Tls] = None


def use_tls(env, server_name=None):
    """Speak TLS in our calls exactly when Ray's processes with this environment do, with the same files
    (tls_utils.load_certs_from_env); read now, once: a node's certificate does not change while it runs.
    server_name: the name a worker's raylet dials its head by (--address), which the head's certificate must
    name; our calls dial the address it resolved to."""
    global _tls
    if env.get("RAY_USE_TLS", "0").lower() not in ("1", "true"):
        _tls = None
        return
    paths = tuple(env[k] for k in ("RAY_TLS_SERVER_CERT", "RAY_TLS_SERVER_KEY", "RAY_TLS_CA_CERT"))
    pem = []
    for path in paths:
        with open(path, "rb") as fh:
            pem.append(fh.read())
    _tls = _Tls(paths, tuple(pem), server_name)


def handshake_failure(ip, port, detail):
    """(cause, fix) when a failed call to ip:port failed in the TLS handshake, else None (tlsprobe.py)."""
    from . import tlsprobe

    return tlsprobe.handshake_failure(ip, port, detail, _tls)


def cluster_versions(ip, port, timeout=3.0):
    """(ray_version, python_version) the head recorded for its cluster, or None when it cannot be read.

    That is the KV entry Ray itself checks at join time (CLUSTER_METADATA in namespace "cluster",
    usage_lib.put_cluster_metadata, utils.check_version_info)."""
    try:
        reply = _rpc(ip, port, _KV_GET, _kv_get_request(b"CLUSTER_METADATA", b"cluster"), timeout)
    except GcsError:
        return None
    return versions_reply(reply)


def versions_reply(reply):
    """(ray_version, python_version) from InternalKVGetReply bytes (value 2: the cluster metadata's JSON), or
    None when it does not hold them as text."""
    try:
        meta = json.loads(protowire.bytes_of(dict(protowire.fields(reply)), 2) or b"null")
    except (ValueError, RecursionError):
        return None
    versions = (meta.get("ray_version"), meta.get("python_version")) if isinstance(meta, dict) else ()
    return versions if len(versions) == 2 and all(isinstance(v, str) for v in versions) else None


def _kv_get_request(key, namespace):
    return protowire.bytes_field(1, key) + protowire.bytes_field(2, namespace)


def kv_get(ip, port, key, namespace, timeout=3.0):
    """The value of one entry of the GCS's internal KV, b"" when there is none; GcsError when the call fails.
    InternalKVGet: key 1 and namespace 2 in the request, status 1 and value 2 in the reply (gcs_service.proto)."""
    return _reply_bytes(_rpc(ip, port, _KV_GET, _kv_get_request(key, namespace), timeout), f"the GCS at {ip}:{port}",
                        "InternalKVGet")


_GET_ALL_NODES = "/ray.rpc.NodeInfoGcsService/GetAllNodeInfo"
_DRAIN_NODE = "/ray.rpc.autoscaler.AutoscalerStateService/DrainNode"
DRAIN_NODE_REASON_PREEMPTION = 2  # autoscaler_pb2.DrainNodeReason; the raylet accepts it on a busy node too


class GcsError(BootError):
    """A GCS call failed (unreachable, refused, or an answer we cannot read)."""


# NodeDeathInfo.Reason (gcs.proto), set by the GCS when a drain it accepted ends the node.
DEATH_REASONS = {0: "unspecified", 1: "expected termination", 2: "unexpected termination",
                 3: "preemption", 4: "idle termination"}
DRAINED = {3, 4}  # AUTOSCALER_DRAIN_PREEMPTED, AUTOSCALER_DRAIN_IDLE


def nodes_at(ip, port, node_ip, node_manager_port, timeout=3.0):
    """[(id hex, alive, start ms, death reason)] of the nodes the GCS knows at node_ip:node_manager_port,
    newest first (a node started again on one address is a new node; the GCS keeps the dead ones).

    GetAllNodeInfoReply: node_info_list 2 (repeated GcsNodeInfo). GcsNodeInfo: node_id 1,
    node_manager_address 2, node_manager_port 5, state 7 (ALIVE is 0, so it is absent on the wire),
    start_time_ms 23, death_info 29 (NodeDeathInfo: reason 1)."""
    return nodes_reply(_rpc(ip, port, _GET_ALL_NODES, b"", timeout), node_ip, node_manager_port)


def nodes_reply(reply, node_ip, node_manager_port):
    """nodes_at's answer from GetAllNodeInfoReply bytes; GcsError when they are not one."""
    found = []
    try:
        for num, raw in protowire.fields(reply):
            if num != 2:
                continue
            info = dict(protowire.fields(raw))
            if protowire.bytes_of(info, 2).decode() == node_ip and info.get(5) == node_manager_port:
                death = dict(protowire.fields(protowire.bytes_of(info, 29)))
                found.append((protowire.bytes_of(info, 1).hex(), protowire.number_of(info, 7) == 0,
                              protowire.number_of(info, 23), protowire.number_of(death, 1)))
    except ValueError:  # UnicodeDecodeError is one
        raise GcsError("the GCS answered GetAllNodeInfo with something we cannot read") from None
    return sorted(found, key=lambda n: n[2], reverse=True)


def node_id(ip, port, node_ip, node_manager_port, timeout=3.0):
    """Hex id of the ALIVE node whose raylet is at node_ip:node_manager_port, or None if there is none."""
    return next((n for n, alive, _, _ in nodes_at(ip, port, node_ip, node_manager_port, timeout) if alive), None)


def drain_request(node_hex, reason_message, deadline_ms):
    """DrainNodeRequest: node_id 1 (bytes), reason 2 (enum), reason_message 3, deadline_timestamp_ms 4."""
    return (protowire.bytes_field(1, bytes.fromhex(node_hex)) + protowire.varint_field(2, DRAIN_NODE_REASON_PREEMPTION)
            + protowire.bytes_field(3, reason_message.encode()) + protowire.varint_field(4, deadline_ms))


def drain_node(ip, port, node_hex, reason_message, deadline_ms, timeout=3.0):
    """(accepted, rejection message) for marking the node draining until deadline_ms (Unix ms).

    DrainNodeReply: is_accepted 1, rejection_reason_message 2."""
    return drain_reply(_rpc(ip, port, _DRAIN_NODE, drain_request(node_hex, reason_message, deadline_ms), timeout))


def drain_reply(reply):
    """(accepted, rejection message) of DrainNodeReply bytes; GcsError when they are not one."""
    try:
        fields = dict(protowire.fields(reply))
        return bool(protowire.number_of(fields, 1)), protowire.bytes_of(fields, 2).decode(errors="replace")
    except ValueError:
        raise GcsError("the GCS answered DrainNode with something we cannot read") from None


def _rpc(ip, port, method, request, timeout):
    grpc = _grpc()

    try:
        return _call(ip, port, method, request, timeout)
    except grpc.RpcError as exc:
        raise GcsError(f"{method.rsplit('/', 1)[-1]} to {ip}:{port} failed: {_code(exc)}") from None


def _code(exc):
    """A gRPC error's status code as a word ("unavailable", "deadline_exceeded")."""
    return exc.code().name.lower() if hasattr(exc, "code") and exc.code() else "error"
