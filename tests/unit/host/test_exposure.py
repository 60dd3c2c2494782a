"""The exposure report from real sockets: processes listening on loopback and beyond, with and without TLS."""

import os
import subprocess
import sys

import psutil

from seedcore_boot.config.settings import resolve
from seedcore_boot.host import exposure

LISTEN = r"""
import socket, sys, time
socks = []
for spec in sys.argv[1:]:
    host, port = spec.rsplit(":", 1)
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    s.bind((host, int(port)))
    s.listen()
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks), flush=True)
time.sleep(60)
"""


def listener(*specs, env=None):
    proc = subprocess.Popen([sys.executable, "-c", LISTEN, *specs], stdout=subprocess.PIPE, text=True,
                            env=dict(os.environ, **(env or {})))
    return proc, [int(p) for p in proc.stdout.readline().split()]


def test_every_listener_beyond_loopback_with_what_a_peer_can_do_there():
    gcs, gcs_ports = listener("0.0.0.0:0", "127.0.0.1:0", env={"RAY_USE_TLS": "1"})
    raylet, raylet_ports = listener("0.0.0.0:0", "0.0.0.0:0", env={"RAY_USE_TLS": "0"})
    try:
        worker_port = raylet_ports[1]
        settings = resolve({"min_worker_port": str(worker_port), "max_worker_port": str(worker_port)}, {}).settings
        planned = {"gcs": gcs_ports[0], "dashboard": gcs_ports[1], "node_manager": raylet_ports[0]}
        found = exposure.measure([psutil.Process(gcs.pid), psutil.Process(raylet.pid)], planned, settings)
        name = psutil.Process(gcs.pid).name()
    finally:
        for p in (gcs, raylet):
            p.kill()
            p.wait()
    by_name = {l.name: l for l in found}
    assert sorted(by_name) == ["core_worker", "gcs", "node_manager"]  # the dashboard on 127.0.0.1 is not exposed
    assert by_name["gcs"].tls is True and by_name["gcs"].anonymous == "nothing"
    assert by_name["node_manager"].tls is False and "run code" in by_name["node_manager"].anonymous
    assert by_name["node_manager"].addresses == ("0.0.0.0",) and by_name["node_manager"].pid == raylet.pid
    lines = exposure.lines(found)
    level, summary = lines[0]
    assert level == "warning" and summary.startswith("3 listener(s) of this node are bound beyond loopback; 2 let "
                                                     "anyone who reaches them run code (no TLS): ")
    assert str(raylet_ports[0]) in summary and "core workers" in summary and str(gcs_ports[0]) not in summary
    assert ("info", f"*:{gcs_ports[0]} GCS ({name}, pid {gcs.pid}): mutual TLS: a peer without a certificate from "
            "the cluster's CA is refused") in lines
    assert lines[-1][1].startswith(f"*:{worker_port} core worker gRPC (1 Ray worker process(es) now): no TLS")


def test_a_node_on_loopback_only_exposes_nothing():
    proc, _ = listener("127.0.0.1:0")
    try:
        found = exposure.measure([psutil.Process(proc.pid)], {}, resolve({}, {}).settings)
    finally:
        proc.kill()
        proc.wait()
    assert found == [] and exposure.lines(found) == [("info", "no listener of this node is bound beyond loopback")]
