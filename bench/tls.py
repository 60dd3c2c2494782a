"""What mutual TLS costs (#19): a cluster with it against the same cluster without, in the same rep, on two
LANs of two emulated hosts each (tests/nshost.py), the order alternating from rep to rep.

- head: `seedcore-boot head` with the sample Serve app, from the command line to "Ray runtime started." and
  to "head ready" (Serve RUNNING and answering);
- join: `seedcore-boot worker`, started once its head is ready, to "worker ready";
- Serve: GET /health through the head's proxy to the app's replica (an actor call over gRPC, so under TLS
  too), CLIENTS threads with keep-alive connections, from inside the head's host: requests/s;
- gRPC: the GCS's CheckAlive from the worker's host, CALLS times on a new channel each (a new connection, so
  with TLS a handshake: what every first call between two Ray processes pays) and CALLS times on one
  channel (what every later call pays).

On a shared machine wall-clock times swing by seconds with the load, so each figure comes with the CPU time
the node's processes used for it (user + system, of every process on the host; a machine's load changes
it far less): CPU seconds to ready, and CPU milliseconds per Serve request. Both clusters are up while the
requests run, and the load alternates between them in WINDOW-second windows, so that both see the same
machine. About 2 min a rep; only with --only tls.
"""

import json
import os

import psutil

from seedcore_boot.tls import certs
from tests.nshost import Lan

from . import hosts

CLIENTS, WINDOW, WINDOWS = 4, 2.0, 8  # per side: WINDOWS windows of WINDOW s
CALLS = 200
CA_DIR = "/tmp/ca"
TLS = {"SEEDCORE_BOOT_TLS": "1", "SEEDCORE_BOOT_TLS_CA_CERT": f"{CA_DIR}/ca.crt",
       "SEEDCORE_BOOT_TLS_CA_KEY": f"{CA_DIR}/ca.key"}

# Inside the head's host: CLIENTS threads, each with one keep-alive connection, for SECONDS; prints the counts.
LOAD = r"""
import http.client, json, sys, threading, time
clients, seconds = int(sys.argv[1]), float(sys.argv[2])
counts, errors = [0] * clients, [0] * clients
def run(i):
    conn = http.client.HTTPConnection("127.0.0.1", 8000, timeout=10)
    while time.monotonic() < end:
        try:
            conn.request("GET", "/health")
            resp = conn.getresponse()
            resp.read()
            counts[i] += resp.status == 200
            errors[i] += resp.status != 200
        except Exception:
            errors[i] += 1
            conn = http.client.HTTPConnection("127.0.0.1", 8000, timeout=10)
threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
t = time.monotonic()
end = t + seconds
[th.start() for th in threads]
[th.join() for th in threads]
print(json.dumps({"ok": sum(counts), "errors": sum(errors), "seconds": time.monotonic() - t}))
"""


# Inside the worker's host, with the node's TLS variables (`tls env`) or none: CheckAlive to the head's GCS.
GRPC = r"""
import json, os, sys, time
import grpc
from seedcore_boot.ray import gcsprobe
ip, calls = sys.argv[1], int(sys.argv[2])
gcsprobe.use_tls(os.environ)
method = "/ray.rpc.NodeInfoGcsService/CheckAlive"
t = time.perf_counter()
for _ in range(calls):
    gcsprobe._call(ip, 6379, method, b"", 5)  # a channel, so a connection, per call
fresh = (time.perf_counter() - t) / calls
tls = gcsprobe._tls
if tls:
    creds = grpc.ssl_channel_credentials(tls.pem[2], tls.pem[1], tls.pem[0])
    channel = grpc.secure_channel(f"{ip}:6379", creds)
else:
    channel = grpc.insecure_channel(f"{ip}:6379")
call = channel.unary_unary(method)
call(b"", timeout=5)
t = time.perf_counter()
for _ in range(calls):
    call(b"", timeout=5)
print(json.dumps({"fresh_ms": 1000 * fresh, "kept_ms": 1000 * (time.perf_counter() - t) / calls}))
"""


def declare(c):
    note = "with and without TLS in the same rep; the machine is shared: see load_before/load_after"
    for mid, label, unit in (
            ("tls.head_marker", 'TLS: head command to "Ray runtime started."', "s"),
            ("tls.head_ready", "TLS: head command to ready (Serve answering)", "s"),
            ("tls.head_cpu", "TLS: CPU used by the head's host to ready", "s"),
            ("tls.join", "TLS: worker command to ready, head up", "s"),
            ("tls.join_cpu", "TLS: CPU used by the worker's host to ready", "s"),
            ("tls.serve_rps", f"TLS: Serve GET /health, {CLIENTS} keep-alive clients", "req/s"),
            ("tls.serve_cpu", "TLS: CPU of the head's host per Serve request", "ms"),
            ("tls.grpc_new", "TLS: a GCS call on a new connection (CheckAlive, from the worker's host)", "ms"),
            ("tls.grpc_kept", "TLS: a GCS call on an open channel (CheckAlive, from the worker's host)", "ms")):
        c.declare(mid, label, unit, "tls on", "tls off", None, note)


def cpu(host):
    """CPU seconds (user + system, children reaped included) of every process on the host now."""
    total = 0.0
    for p in host.processes():
        try:
            t = p.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
        except psutil.Error:
            pass
    return total


def _give_ca(host, ca):
    host.write(f"{CA_DIR}/ca.crt", certs.cert_pem(ca[0]).decode())
    host.write(f"{CA_DIR}/ca.key", certs.key_pem(ca[1]).decode())
    os.chmod(host.path(f"{CA_DIR}/ca.key"), 0o600)


def _cluster(c, side, lan, log):
    """Head and worker of one side up on `lan`; returns (the head's host, the worker's, the worker's TLS env)."""
    h1, h2 = lan.host(1), lan.host(2)
    env = {}
    if side == "ours":
        ca = certs.make_ca("bench CA", 30)
        for h in (h1, h2):
            _give_ca(h, ca)
        env = TLS
    t0 = hosts.time.monotonic()
    head = h1.boot("head", "--node-ip-address", "10.200.0.1", env=env)
    marker = hosts.stamp(head, hosts.MARKER, 300) - t0
    ready = hosts.stamp(head, "head ready", 300) - t0
    head_cpu = cpu(h1)
    t1 = hosts.time.monotonic()
    worker = h2.boot("worker", "--address", "10.200.0.1:6379", env=env)
    join = hosts.stamp(worker, "worker ready", 300) - t1
    join_cpu = cpu(h2)
    for mid, value in (("tls.head_marker", marker), ("tls.head_ready", ready), ("tls.head_cpu", head_cpu),
                       ("tls.join", join), ("tls.join_cpu", join_cpu)):
        c.add(mid, side, value)
    log(f"{_name(side)}: marker {marker:.2f} s, head ready {ready:.2f} s ({head_cpu:.1f} s CPU), join {join:.2f} s "
        f"({join_cpu:.1f} s CPU)")
    node_env = {}
    if side == "ours":
        out = h2.run([*hosts.BOOT, "tls", "env"], env=env)
        node_env = dict(l[len("export "):].split("=", 1) for l in out.stdout.splitlines())
    return h1, h2, node_env


def _name(side):
    return "tls on " if side == "ours" else "tls off"


def one_rep(c, order, log):
    lans = {side: Lan(f"bt{side[0]}") for side in order}
    try:
        clusters = {side: _cluster(c, side, lans[side], log) for side in order}
        heads = {side: got[0] for side, got in clusters.items()}
        done = {side: {"ok": 0, "errors": 0, "seconds": 0.0, "cpu": 0.0} for side in order}
        for k in range(WINDOWS):
            for side in (order if k % 2 == 0 else order[::-1]):
                before = cpu(heads[side])
                out = heads[side].python(LOAD, CLIENTS, WINDOW, timeout=WINDOW + 60)
                got = json.loads(out.stdout.strip().splitlines()[-1])
                got["cpu"] = cpu(heads[side]) - before
                for key in done[side]:
                    done[side][key] += got[key]
        for side, d in done.items():
            rps, per = d["ok"] / d["seconds"], 1000 * d["cpu"] / max(1, d["ok"])
            c.add("tls.serve_rps", side, rps)
            c.add("tls.serve_cpu", side, per)
            log(f"{_name(side)}: Serve {rps:.0f} req/s, {per:.1f} ms CPU a request ({d['errors']} errors)")
        for side in order:
            _, worker_host, node_env = clusters[side]
            out = worker_host.python(GRPC, "10.200.0.1", CALLS, env=node_env, timeout=300)
            got = json.loads(out.stdout.strip().splitlines()[-1])
            c.add("tls.grpc_new", side, got["fresh_ms"])
            c.add("tls.grpc_kept", side, got["kept_ms"])
            log(f"{_name(side)}: CheckAlive {got['fresh_ms']:.2f} ms on a new connection, {got['kept_ms']:.3f} ms "
                "on an open channel")
    finally:
        for lan in lans.values():
            lan.close()


def run(c, reps, log):
    declare(c)
    for i in range(reps):
        order = ("ours", "baseline") if i % 2 == 0 else ("baseline", "ours")
        try:
            one_rep(c, order, lambda msg: log(f"tls rep {i + 1}: {msg}"))
        except Exception as exc:
            log(f"tls rep {i + 1}: FAILED: {exc}")
