"""The two GCS calls a worker makes before `ray start`, over plain gRPC with hand-encoded protobuf, so the
supervisor never imports ray.

CheckAlive (NodeInfoGcsService) is what `ray start` itself uses to probe a GCS; InternalKVGet reads the
cluster metadata Ray checks at join time.
"""

_CHECK_ALIVE = "/ray.rpc.NodeInfoGcsService/CheckAlive"  # the call `ray start` itself uses to probe the GCS


def _fields(buf):
    """Top-level (field number, value) pairs of a protobuf message; enough for CheckAliveReply."""
    i, out = 0, []
    while i < len(buf):
        key, i = _varint(buf, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            val, i = _varint(buf, i)
        elif wire == 2:
            n, i = _varint(buf, i)
            val, i = buf[i:i + n], i + n
        elif wire == 5:
            val, i = buf[i:i + 4], i + 4
        elif wire == 1:
            val, i = buf[i:i + 8], i + 8
        else:
            raise ValueError("unsupported wire type")
        out.append((num, val))
    return out


def _varint(buf, i):
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7


def check_gcs(ip, port, timeout):
    """(healthy, detail, ray_version): the GCS answers CheckAlive with status OK, not merely TCP."""
    import grpc

    target = f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"
    try:
        with grpc.insecure_channel(target, options=[("grpc.enable_http_proxy", 0)]) as channel:
            reply = channel.unary_unary(_CHECK_ALIVE)(b"", timeout=timeout)
    except grpc.RpcError as exc:
        code = exc.code().name.lower() if hasattr(exc, "code") and exc.code() else "error"
        detail = (exc.details() or "").split("\n")[0] if hasattr(exc, "details") else ""
        return False, f"{code}: {detail}" if detail else code, None
    try:
        fields = dict(_fields(reply))
        status = dict(_fields(fields.get(1, b"")))
        version = fields.get(2, b"").decode()
    except (ValueError, IndexError, UnicodeDecodeError):
        return False, "the GCS port answered, but not like a Ray GCS", None
    if status.get(1, 0) != 0:
        return False, f"GCS unhealthy: {status.get(2, b'').decode(errors='replace')}", version
    return True, "healthy", version


_KV_GET = "/ray.rpc.InternalKVGcsService/InternalKVGet"


def _bytes_field(num, value):
    return bytes([num << 3 | 2]) + _encode_varint(len(value)) + value


def _encode_varint(n):
    out = b""
    while True:
        out += bytes([(n & 0x7F) | (0x80 if n > 0x7F else 0)])
        n >>= 7
        if not n:
            return out


def cluster_versions(ip, port, timeout=3.0):
    """(ray_version, python_version) the head recorded for its cluster, or None when it cannot be read.

    That is the KV entry Ray itself checks at join time (CLUSTER_METADATA in namespace "cluster",
    usage_lib.put_cluster_metadata, utils.check_version_info), read with InternalKVGet; key 1 and
    namespace 2 in the request, status 1 and value 2 in the reply (gcs_service.proto)."""
    import json

    import grpc

    target = f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"
    request = _bytes_field(1, b"CLUSTER_METADATA") + _bytes_field(2, b"cluster")
    try:
        with grpc.insecure_channel(target, options=[("grpc.enable_http_proxy", 0)]) as channel:
            reply = channel.unary_unary(_KV_GET)(request, timeout=timeout)
        meta = json.loads(dict(_fields(reply)).get(2, b"") or b"null")
        return meta["ray_version"], meta["python_version"]
    except (grpc.RpcError, ValueError, KeyError, TypeError, IndexError):
        return None
