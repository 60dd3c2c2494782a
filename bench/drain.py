"""A worker stopped under Serve load: plain `ray start --block` workers against seedcore-boot workers, which
drain first (seedcore_boot/node/drain.py), in the same run (about 1.3 minutes a rep; only when asked:
`python -m bench --only drain`).

Four namespaced hosts on one emulated LAN: a seedcore-boot head (10.200.0.1, no CPU for replicas: Serve's
proxy prefers a replica on its own node, so with one on the head a worker's replica gets no traffic and its
stop shows nothing) and three workers of one kind (1 CPU each); an app with 2 replicas, at most 1 per node,
each request taking 0.2 s (tests/e2e/drain_app.py), so one worker has room for a replacement; 4 clients
in a loop through the head's proxy; Serve's proxies on every node (its default, as in
tests/e2e/test_drain.py), so our drain waits for the worker's proxy too (30 s or more). SIGTERM goes to a
worker holding a replica; the load runs on for 8 s after that worker's exit. Measured: requests failed,
and the seconds from the SIGTERM until that worker's host has no process left.
"""

import json
import time

from bench import hosts
from tests.e2e.test_drain import LOAD, WORKERS, replicas, start_head, wait_restored, with_app
from tests.nshost import Lan

HEAD = "10.200.0.1:6379"


def worker(host, side):
    if side == "plain":
        argv, _ = hosts.plain_argv("worker", address=HEAD, num_cpus=1)
        return host.spawn(argv, env=dict(with_app(host), **hosts.UNBUFFERED))
    return host.boot("worker", "--address", HEAD, "--num-cpus", "1", env=with_app(host))


def one_rep(side):
    network = Lan("dr")
    try:
        h1 = network.host(1)
        by_ip = {ip: network.host(int(ip.rsplit(".", 1)[1])) for ip in WORKERS}
        head = start_head(h1)
        # The head is ready only once both replicas run, and the second needs a worker: a plain worker
        # cannot wait for its head, so the workers start once the head's GCS is up.
        head.wait_line("ray runtime started", 120)
        procs = {ip: worker(h, side) for ip, h in by_ip.items()}
        head.wait_line("head ready", 240)
        on = wait_restored(h1, timeout=180)
        victim = sorted(on)[0]
        load = h1.spawn(["python3", "-c", LOAD])
        load.wait_line("load running", 30)
        time.sleep(3)
        gone, _, orphans = hosts.timed_stop(by_ip[victim], procs[victim], limit=120)
        time.sleep(8)
        h1.write("/tmp/stop-load", "")
        counts = json.loads(load.wait_line(lambda l: l.startswith("{"), 60))
        return counts["ok"], len(counts["failed"]), gone, orphans, replicas(h1)
    finally:
        network.close()


def declare(c):
    c.declare("drain.failed", "drain: requests failed when a worker holding a replica is stopped under load",
              "count", "seedcore-boot worker (drains)", "plain `ray start --block` worker")
    c.declare("drain.stop", "drain: SIGTERM to the worker's host empty", "s", "seedcore-boot worker (drains)",
              "plain `ray start --block` worker")


def run(c, reps, log):
    declare(c)
    for i in range(reps):
        for side in (("plain", "ours") if i % 2 == 0 else ("ours", "plain")):  # alternate: drift hits both alike
            try:
                ok, failed, gone, orphans, after = one_rep(side)
            except Exception as exc:  # noqa: BLE001 - one broken rep is reported, the run goes on
                log(f"drain rep {i + 1} {side}: FAILED: {exc}")
                continue
            key = "baseline" if side == "plain" else "ours"
            c.add("drain.failed", key, failed)
            if gone is not None:
                c.add("drain.stop", key, gone)
            log(f"drain rep {i + 1} {side}: {failed} of {ok + failed} requests failed; worker's host empty "
                f"{gone if gone is None else round(gone, 1)} s after SIGTERM, {orphans} orphan(s); app after: "
                f"{after[0]}, replicas {after[1]}")
