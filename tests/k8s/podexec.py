"""The API's exec (`kubectl exec`): a command in a pod's container, through the API server, the kubelet and
the container runtime. Stdlib only: the API server's WebSocket protocol `v4.channel.k8s.io` (what kubectl
1.31+ speaks; the API server turns it into the kubelet's SPDY stream), read-only (no stdin, no TTY).

Every binary message is one channel byte (1 stdout, 2 stderr, 3 the final Status) and the data; the Status
is {"status": "Success"} or a Failure whose cause `ExitCode` carries the exit code.
"""

import base64
import json
import os
import subprocess
import urllib.parse

from tests.k8s import api


def _read_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("the exec stream ended mid-frame")
        data += chunk
    return data


def _frames(sock):
    """(opcode, payload) of every WebSocket frame the server sends (they are never masked), until close."""
    while True:
        b0, b1 = _read_exact(sock, 2)
        n = b1 & 0x7F
        if n == 126:
            n = int.from_bytes(_read_exact(sock, 2), "big")
        elif n == 127:
            n = int.from_bytes(_read_exact(sock, 8), "big")
        payload = _read_exact(sock, n)
        if b0 & 0x0F == 8:
            return
        yield b0 & 0x0F, payload


def _exit_code(status):
    if status.get("status") == "Success":
        return 0
    causes = (status.get("details") or {}).get("causes") or []
    codes = [int(c["message"]) for c in causes if c.get("reason") == "ExitCode"]
    if not codes:
        raise api.ApiError(500, f"exec failed: {status.get('message')}")
    return codes[0]


def run(client, pod, argv, container=None, namespace="default", timeout=60):
    """subprocess.CompletedProcess (returncode, stdout, stderr) of `argv` in `pod`; returncode 124 when
    `timeout` passes first."""
    query = [("command", a) for a in argv] + [("stdout", "true"), ("stderr", "true")]
    query += [("container", container)] if container else []
    path = f"/api/v1/namespaces/{namespace}/pods/{pod}/exec?{urllib.parse.urlencode(query)}"
    conn = api._Connection(client.unix_path, client._ctx, timeout)
    conn.connect()
    sock, out = conn.sock, {1: b"", 2: b""}
    try:
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {client.token}\r\n"
                      f"Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                      f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Protocol: v4.channel.k8s.io\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += _read_exact(sock, 1)
        if not head.startswith(b"HTTP/1.1 101"):
            raise api.ApiError(int(head.split()[1]), head.decode("utf-8", "replace") + sock.recv(65536).decode(
                "utf-8", "replace"))
        status, channel = None, None
        for opcode, payload in _frames(sock):
            if opcode in (1, 2) and payload:  # a new message: its first byte is the channel
                channel, payload = payload[0], payload[1:]
            elif opcode != 0:  # ping/pong: nothing to read
                continue
            if channel == 3:
                status = (status or b"") + payload
            elif channel in out:
                out[channel] += payload
    except TimeoutError:
        return subprocess.CompletedProcess(argv, 124, out[1].decode(errors="replace"), f"timed out after {timeout} s")
    finally:
        conn.close()
    code = _exit_code(json.loads(status)) if status else 0
    return subprocess.CompletedProcess(argv, code, out[1].decode(errors="replace"), out[2].decode(errors="replace"))
