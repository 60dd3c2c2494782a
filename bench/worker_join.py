"""Join latency: from the moment the head's GCS accepts connections to the worker's "Ray runtime started.",
for `seedcore-boot worker` against a plain `ray start --address --block` launched at the same moment
(both before the head), each on its own namespaced host on one emulated LAN.

    python bench/worker_join.py [REPS]        (root)

Target (issue 4): seedcore-boot within 1 s of plain.
"""

import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from tests.nshost import NsHost, Switch  # noqa: E402

HEAD = "10.200.0.1:6379"
# Inside the head's host: print the (system-wide) monotonic time at which the GCS port first accepts.
GCS_UP = r"""
import socket, time
while True:
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=0.2).close()
        break
    except OSError:
        time.sleep(0.02)
print(time.monotonic(), flush=True)
"""
MARKER = "Ray runtime started."


def marker_time(proc, timeout):
    """When the marker line reached us (stamped on arrival by the reader thread)."""
    proc.wait_line(MARKER, timeout)
    return next(t for t, l in zip(list(proc.stamps), list(proc.lines)) if MARKER in l)


def one_rep():
    switch = Switch()
    hosts = []
    try:
        for octet in (1, 2, 3):
            hosts.append(NsHost(f"bench{octet}"))
            switch.plug(hosts[-1], octet)
        h1, h2, h3 = hosts
        ray = os.path.join(os.path.dirname(sys.executable), "ray")
        ours = h2.boot("worker", "--address", HEAD, "--num-cpus", "1")
        plain = h3.spawn([ray, "start", f"--address={HEAD}", "--block", "--num-cpus=1"],
                         env={"RAY_gcs_rpc_server_reconnect_timeout_s": "10", "PYTHONUNBUFFERED": "1"})
        time.sleep(3)  # both are waiting for the head now
        poller = h1.spawn([sys.executable, "-c", GCS_UP])
        h1.boot("head", "--no-serve", "--node-ip-address", "10.200.0.1", "--num-cpus", "1")
        gcs_up = float(poller.wait_line(lambda l: l.strip().replace(".", "").isdigit(), timeout=120))
        t_ours = marker_time(ours, 200)
        t_plain = marker_time(plain, 200)
        return t_ours - gcs_up, t_plain - gcs_up
    finally:
        for h in hosts:
            h.close()
        switch.close()


def main():
    reps = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    ours, plain = [], []
    for i in range(reps):
        a, b = one_rep()
        ours.append(a)
        plain.append(b)
        print(f"rep {i + 1}: seedcore-boot {a:.2f} s, plain ray start {b:.2f} s after the GCS came up", flush=True)
    diff = statistics.median(ours) - statistics.median(plain)
    print(f"median: seedcore-boot {statistics.median(ours):.2f} s, plain {statistics.median(plain):.2f} s, "
          f"difference {diff:+.2f} s (target <= +1 s)")


if __name__ == "__main__":
    main()
