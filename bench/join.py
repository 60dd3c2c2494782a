"""Join latency (formerly bench/worker_join.py): from the moment the head's GCS accepts connections to the
worker's "Ray runtime started.", `seedcore-boot worker` against a plain `ray start --address --block`
launched at the same moment (both before the head), each on its own host of one emulated LAN.
"""

from tests.nshost import Lan

from . import hosts

HEAD = "10.200.0.1:6379"
# Inside the head's host: print the (machine-wide) monotonic time at which the GCS port first accepts.
GCS_UP = r"""
import socket, time
print("polling", flush=True)
while True:
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=0.2).close()
        break
    except OSError:
        time.sleep(0.02)
print(f"up {time.monotonic()}", flush=True)
"""


def declare(c):
    c.declare("join.worker", 'join: head\'s GCS up to the worker\'s "Ray runtime started."', "s",
              "seedcore-boot worker", "ray start --address --block", None,
              note="both started 3 s before the head")


def one_rep(c, log):
    lan = Lan("bj")
    try:
        h1, h2, h3 = lan.host(1), lan.host(2), lan.host(3)
        ours = h2.boot("worker", "--address", HEAD, "--num-cpus", "1")
        plain = h3.spawn([hosts.RAY, "start", f"--address={HEAD}", "--block", "--num-cpus=1"],
                         env={"RAY_gcs_rpc_server_reconnect_timeout_s": "10", **hosts.UNBUFFERED})
        hosts.time.sleep(3)  # both are waiting for the head now
        poll = hosts.poller(h1, GCS_UP)
        h1.boot("head", "--no-serve", "--node-ip-address", "10.200.0.1", "--num-cpus", "1")
        gcs_up = hosts.poll_result(poll, 120)
        a = hosts.stamp(ours, hosts.MARKER, 200) - gcs_up
        b = hosts.stamp(plain, hosts.MARKER, 200) - gcs_up
        c.add("join.worker", "ours", a)
        c.add("join.worker", "baseline", b)
        log(f"seedcore-boot {a:.2f} s, plain ray start {b:.2f} s after the GCS came up")
    finally:
        lan.close()


def run(c, reps, log):
    declare(c)
    for i in range(reps):
        try:
            one_rep(c, lambda msg: log(f"join rep {i + 1}: {msg}"))
        except Exception as exc:
            log(f"join rep {i + 1}: FAILED: {exc}")
