"""A worker cut off from its head under Serve load: plain `ray start --block` workers against seedcore-boot
workers (defaults), in the same run (about 4 minutes a side a rep; only when asked:
`python -m bench --only partition`).

The drain bench's cluster (bench/drain.py, tests/e2e/test_drain.py): a seedcore-boot head with no CPU for
replicas and an app of 2 replicas at most 1 a node, three workers of one kind, 4 clients in a loop through the
head's proxy. One worker holding a replica is cut off (its veth down on the switch's side,
tests/e2e/test_partition.py's Link) for 10, 30 and 50 s in turn on the same cluster; after each heal the load
runs on until the app is RUNNING with 2 replicas again (or 90 s), plus 5 s; the next cut waits for the head's
health checks of the node to pass again (Ray adds up failures until one passes). Measured a cut: the requests that
failed, whether the cut worker's process is still the same afterwards (1) or gone (0), and the seconds from
the heal until the app is restored.
"""

import json
import time

from bench import hosts
from tests.e2e.test_drain import LOAD, WORKERS, start_head, wait_restored, with_app
from tests.e2e.test_partition import Link, checks_pass_again
from tests.nshost import Lan

HEAD = "10.200.0.1:6379"
CUTS = (10, 30, 50)


def worker(host, side):
    if side == "plain":
        argv, _ = hosts.plain_argv("worker", address=HEAD, num_cpus=1)
        return host.spawn(argv, env=dict(with_app(host), **hosts.UNBUFFERED))
    return host.boot("worker", "--address", HEAD, "--num-cpus", "1", env=with_app(host))


def one_side(side, log):
    """{cut seconds: (failed, ok, survived, restored after heal s or None)} for one kind of worker."""
    network = Lan("pt")
    out = {}
    try:
        h1 = network.host(1)
        by_ip = {ip: network.host(int(ip.rsplit(".", 1)[1])) for ip in WORKERS}
        head = start_head(h1)
        head.wait_line("ray runtime started", 120)  # a plain worker cannot wait for its head
        procs = {ip: worker(h, side) for ip, h in by_ip.items()}
        head.wait_line("head ready", 240)
        for seconds in CUTS:
            on = wait_restored(h1, timeout=180)
            checks_pass_again(h1)  # each cut on its own: Ray's count of failed checks reset by a passing one
            victim = sorted(on)[0]
            pid = procs[victim].popen.pid
            h1.run(["rm", "-f", "/tmp/stop-load"])
            load = h1.spawn(["python3", "-c", LOAD])
            load.wait_line("load running", 30)
            time.sleep(3)
            link = Link(network, by_ip[victim])
            link.set("down")
            time.sleep(seconds)
            link.set("up")
            healed = time.monotonic()
            try:
                wait_restored(h1, timeout=90)
                restored = time.monotonic() - healed
            except AssertionError:
                restored = None
            time.sleep(5)
            h1.write("/tmp/stop-load", "")
            counts = json.loads(load.wait_line(lambda l: l.startswith("{"), 60))
            survived = procs[victim].popen.poll() is None and procs[victim].popen.pid == pid
            out[seconds] = (len(counts["failed"]), counts["ok"], survived, restored)
            log(f"partition {side}: {seconds} s cut of {victim}: {len(counts['failed'])} of "
                f"{counts['ok'] + len(counts['failed'])} requests failed; worker "
                f"{'still running' if survived else 'GONE'}; app restored "
                f"{'never' if restored is None else f'{restored:.1f} s'} after the heal")
            if not survived:  # a restart policy would bring it back: do so, so the next cut has 3 workers
                procs[victim] = worker(by_ip[victim], side)
        return out
    finally:
        network.close()


def declare(c):
    for seconds in CUTS:
        c.declare(f"partition.failed.{seconds}s", f"partition: requests failed, a {seconds} s cut of a worker "
                  "holding a replica", "count", "seedcore-boot worker", "plain `ray start --block` worker")
        c.declare(f"partition.survived.{seconds}s", f"partition: the cut worker still running after a {seconds} s "
                  "cut (1 yes, 0 no)", "count", "seedcore-boot worker", "plain `ray start --block` worker")
        c.declare(f"partition.restored.{seconds}s", f"partition: heal to the app RUNNING with 2 replicas, a "
                  f"{seconds} s cut", "s", "seedcore-boot worker", "plain `ray start --block` worker")


def run(c, reps, log):
    declare(c)
    for i in range(reps):
        for side in (("plain", "ours") if i % 2 == 0 else ("ours", "plain")):  # alternate: drift hits both alike
            try:
                result = one_side(side, log)
            except Exception as exc:  # noqa: BLE001 - one broken rep is reported, the run goes on
                log(f"partition rep {i + 1} {side}: FAILED: {exc}")
                continue
            key = "baseline" if side == "plain" else "ours"
            for seconds, (failed, _, survived, restored) in result.items():
                c.add(f"partition.failed.{seconds}s", key, failed)
                c.add(f"partition.survived.{seconds}s", key, int(survived))
                if restored is not None:
                    c.add(f"partition.restored.{seconds}s", key, restored)
