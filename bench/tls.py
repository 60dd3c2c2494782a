"""What mutual TLS costs (#19): a cluster with it against the same cluster without, in the same run, the order
alternating from rep to rep; each rep on a fresh LAN of two hosts (tests/nshost.py).

- head: `seedcore-boot head` with the sample Serve app, from the command line to "Ray runtime started."
  and to "head ready" (Serve RUNNING and answering);
- join: `seedcore-boot worker` started once the head is ready, to "worker ready";
- Serve: GET /health through the head's proxy to the app's replica (an actor call, over gRPC, so under TLS
  too), CLIENTS threads with keep-alive connections for SECONDS s from inside the head's host: requests/s.

About 1.5 min a rep; only with --only tls.
"""

import json
import os

from seedcore_boot import certs
from tests.nshost import Lan

from . import hosts

CLIENTS, SECONDS = 4, 10.0
CA_DIR = "/tmp/ca"
TLS = {"SEEDCORE_BOOT_TLS": "1", "SEEDCORE_BOOT_TLS_CA_CERT": f"{CA_DIR}/ca.crt",
       "SEEDCORE_BOOT_TLS_CA_KEY": f"{CA_DIR}/ca.key"}

# Inside the head's host: CLIENTS threads, each with one keep-alive connection, for SECONDS; prints the count.
LOAD = r"""
import http.client, json, sys, threading, time
clients, seconds = int(sys.argv[1]), float(sys.argv[2])
counts, errors = [0] * clients, [0] * clients
end = time.monotonic() + seconds
def run(i):
    conn = http.client.HTTPConnection("127.0.0.1", 8000, timeout=10)
    while time.monotonic() < end:
        try:
            conn.request("GET", "/health")
            resp = conn.getresponse()
            resp.read()
            if resp.status == 200:
                counts[i] += 1
            else:
                errors[i] += 1
        except Exception:
            errors[i] += 1
            conn = http.client.HTTPConnection("127.0.0.1", 8000, timeout=10)
threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
t = time.monotonic()
[th.start() for th in threads]
[th.join() for th in threads]
print(json.dumps({"ok": sum(counts), "errors": sum(errors), "seconds": time.monotonic() - t}))
"""


def declare(c):
    note = "same run, order alternating; the machine is shared: see load_before/load_after"
    c.declare("tls.head_marker", 'TLS: head command to "Ray runtime started."', "s", "tls on", "tls off", None, note)
    c.declare("tls.head_ready", "TLS: head command to ready (Serve answering)", "s", "tls on", "tls off", None, note)
    c.declare("tls.join", "TLS: worker command to ready, head up", "s", "tls on", "tls off", None, note)
    c.declare("tls.serve_rps", f"TLS: Serve GET /health, {CLIENTS} keep-alive clients for {SECONDS:g} s", "req/s",
              "tls on", "tls off", None, note)


def _give_ca(host, ca):
    host.write(f"{CA_DIR}/ca.crt", certs.cert_pem(ca[0]).decode())
    host.write(f"{CA_DIR}/ca.key", certs.key_pem(ca[1]).decode())
    os.chmod(host.path(f"{CA_DIR}/ca.key"), 0o600)


def one(c, side, log):
    lan = Lan("bt")
    try:
        h1, h2 = lan.host(1), lan.host(2)
        env = {}
        if side == "ours":
            ca = certs.make_ca("bench CA", 30)
            for h in (h1, h2):
                _give_ca(h, ca)
            env = TLS
        t0 = hosts.time.monotonic()
        head = h1.boot("head", "--node-ip-address", "10.200.0.1", env=env)
        marker = hosts.stamp(head, hosts.MARKER, 240) - t0
        ready = hosts.stamp(head, "head ready", 240) - t0
        t1 = hosts.time.monotonic()
        worker = h2.boot("worker", "--address", "10.200.0.1:6379", env=env)
        join = hosts.stamp(worker, "worker ready", 240) - t1
        out = h1.python(LOAD, CLIENTS, SECONDS, timeout=SECONDS + 60)
        load = json.loads(out.stdout.strip().splitlines()[-1])
        rps = load["ok"] / load["seconds"]
        for mid, value in (("tls.head_marker", marker), ("tls.head_ready", ready), ("tls.join", join),
                           ("tls.serve_rps", rps)):
            c.add(mid, side, value)
        log(f"{'tls on ' if side == 'ours' else 'tls off'}: marker {marker:.2f} s, head ready {ready:.2f} s, "
            f"join {join:.2f} s, Serve {rps:.0f} req/s ({load['errors']} errors)")
    finally:
        lan.close()


def run(c, reps, log):
    declare(c)
    for i in range(reps):
        order = ("ours", "baseline") if i % 2 == 0 else ("baseline", "ours")
        for side in order:
            try:
                one(c, side, lambda msg: log(f"tls rep {i + 1}: {msg}"))
            except Exception as exc:
                log(f"tls rep {i + 1} ({side}): FAILED: {exc}")
