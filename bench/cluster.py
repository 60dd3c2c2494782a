"""Cluster formation: a head and N workers on N+1 hosts of one emulated LAN (tests.nshost.Lan, 10.200.0.N),
N = 1 and 8, all commands started together (head first), seedcore-boot `head --no-serve` / `worker` against
plain `ray start --block` with the same ports and flags, alternating.

A poller on the head's host (Ray imported before the clock starts) notes when the GCS port first accepts and
then asks the GCS for its node table every 50 ms (GcsClient.get_all_node_info, no driver): the time from the
first command to N+1 nodes ALIVE, and each worker's join (the GCS up to its node ALIVE). At N = 8 also, once
formed: the head host's CPU seconds and memory (PSS of its processes), the CPU seconds of every process of
the cluster (the machine is shared: its own counters would count the neighbours too), and each node's
supervising process (seedcore-boot, or plain Ray's `ray start`): its peak RSS (VmHWM) and CPU. With N = 1 the
worker is then stopped (SIGTERM until every process of it is gone).
"""

import json
import os
import statistics

import psutil

from tests.nshost import Lan

from . import hosts
from .head import TARGET_STOP, _s

SIZES = (1, 8)
BIG = SIZES[-1]
HEAD = "10.200.0.1"

NODES = r"""
import json, socket, sys, time
from ray._raylet import GcsClient
n, limit, address = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
host, port = address.rsplit(":", 1)
print("polling", flush=True)
end = time.monotonic() + limit
while time.monotonic() < end:
    try:
        socket.create_connection((host, int(port)), timeout=0.2).close()
        break
    except OSError:
        time.sleep(0.02)
gcs, alive, client = time.monotonic(), {}, GcsClient(address=address, nums_reconnect_retry=0)
while len(alive) < n and time.monotonic() < end:
    try:
        nodes = client.get_all_node_info(timeout=1)
    except Exception:
        nodes = {}
    now = time.monotonic()
    for info in nodes.values():
        if info["state"] == 0:  # ALIVE
            alive.setdefault(info["node_name"].decode(), now)
    time.sleep(0.05)
print(("up " if len(alive) >= n else "timeout ") + json.dumps({"gcs": gcs, "alive": alive}), flush=True)
"""


def declare(c):
    for n in SIZES:
        c.declare(f"cluster.n{n}", f"cluster: head + {n} worker(s) on {n + 1} hosts, first command to {n + 1} nodes "
                  "ALIVE", "s", "seedcore-boot head + worker", "ray start --block on the same hosts",
                  {"kind": "ratio_max", "value": 0.90} if n == BIG else None)
    c.declare(f"cluster.n{BIG}_join", f"cluster: head + {BIG} workers, a worker's join (GCS up to its node ALIVE), "
              "median of the workers", "s", "seedcore-boot worker", "ray start --address --block")
    c.declare(f"cluster.n{BIG}_join_worst", f"cluster: head + {BIG} workers, the last worker's join", "s",
              "seedcore-boot worker", "ray start --address --block")
    c.declare(f"cluster.n{BIG}_supervisor_rss", f"cluster: head + {BIG} workers, peak RSS of a node's supervising "
              "process (the largest of the nodes)", "MB", "seedcore-boot (python)", "`ray start --block` (python)",
              {"kind": "max", "value": 60})
    c.declare(f"cluster.n{BIG}_head_cpu", f"cluster: head + {BIG} workers, CPU seconds of the head's host once formed",
              "s", "seedcore-boot head", "ray start --head --block")
    c.declare(f"cluster.n{BIG}_head_memory", f"cluster: head + {BIG} workers, memory of the head's host once formed "
              "(PSS of its processes)", "MB", "seedcore-boot head", "ray start --head --block")
    c.declare(f"cluster.n{BIG}_cpu", f"cluster: head + {BIG} workers, CPU seconds of all the cluster's processes "
              "once formed", "s", "seedcore-boot", "plain")
    c.declare(f"cluster.n{BIG}_floor", f"cluster: head + {BIG} workers, that CPU spread over every CPU (the least "
              "wall time that work needs here)", "s", "seedcore-boot", "plain")
    c.declare(f"cluster.n{BIG}_supervisor_cpu", f"cluster: head + {BIG} workers, CPU seconds of the {BIG + 1} "
              "supervising processes while forming", "s", "seedcore-boot processes", "`ray start --block` processes")
    c.declare("stop.worker", "stop: worker (head + 1 worker), SIGTERM to all its processes gone", "s",
              "seedcore-boot worker", "ray start --address --block, SIGTERM", TARGET_STOP)
    c.declare("stop.worker_orphans", "stop: worker, processes left on its host 1 s after exit", "count",
              "seedcore-boot worker", "ray start --address --block, SIGTERM", {"kind": "zero"})


def commands(mode, n):
    gcs = f"{HEAD}:6379"
    if mode == "ours":
        head = [*hosts.BOOT, "head", "--no-serve", "--node-ip-address", HEAD, "--num-cpus", "1"]
        workers = [[*hosts.BOOT, "worker", "--address", gcs, "--node-ip-address", f"10.200.0.{k}",
                    "--num-cpus", "1"] for k in range(2, n + 2)]
        return head, workers, {}
    head, _ = hosts.plain_argv("head", node_ip_address=HEAD, num_cpus=1)
    workers = [hosts.plain_argv("worker", address=gcs, node_ip_address=f"10.200.0.{k}", num_cpus=1)[0]
               for k in range(2, n + 2)]
    return head, workers, hosts.UNBUFFERED


def peak_rss_mb(pid):
    try:
        with open(f"/proc/{pid}/status") as fh:
            return next(int(l.split()[1]) for l in fh if l.startswith("VmHWM:")) * 1024 / 1e6
    except (OSError, StopIteration):
        return None


def host_usage(host, skip=(), memory=True):
    """(CPU seconds, PSS MB) of the processes alive on `host` now, but for the pids in `skip`."""
    cpu = pss = 0.0
    for p in host.processes():
        if p.pid in skip:
            continue
        try:
            t = p.cpu_times()
            cpu += t.user + t.system
            pss += p.memory_full_info().pss / 1e6 if memory else 0
        except psutil.Error:
            continue
    return cpu, pss


def formed_or_failed(watch, head, limit=250):
    """The poller's line once every node is ALIVE; fails as soon as the head's command has exited."""
    end = hosts.time.monotonic() + limit
    while True:
        try:
            line = watch.wait_line(lambda l: l.startswith(("up ", "timeout ")), 2)
            break
        except AssertionError:
            if head.popen.poll() is not None:
                said = [l for l in head.lines if "Failed" in l][:2] + [l for l in head.lines if "rror" in l][-1:]
                raise RuntimeError(f"the head exited ({head.popen.returncode}): {' | '.join(said)[-400:]}") from None
            if hosts.time.monotonic() > end:
                raise
    if line.startswith("timeout"):
        raise RuntimeError(f"not formed: {line[:300]}")
    return line


def one(c, mode, n, log):
    side = "ours" if mode == "ours" else "baseline"
    lan = Lan(f"b{mode[0]}")
    try:
        hs = [lan.host(k) for k in range(1, n + 2)]
        head_argv, worker_argvs, env = commands(mode, n)
        watch = hosts.poller(hs[0], NODES, n + 1, 240, f"{HEAD}:6379")
        t0 = hosts.time.monotonic()
        head = hs[0].spawn(head_argv, env=env)
        workers = [h.spawn(a, env=env) for h, a in zip(hs[1:], worker_argvs)]
        supervisors = [p.inner().pid for p in [head, *workers]]
        line = formed_or_failed(watch, head)
        seen = json.loads(line.split(" ", 1)[1])
        formed = max(seen["alive"].values()) - t0
        joins = [t - seen["gcs"] for ip, t in seen["alive"].items() if ip != HEAD]
        c.add(f"cluster.n{n}", side, formed)
        msg = f"{mode} N={n}: {n + 1} nodes ALIVE {formed:.2f} s after the first command"
        if n == BIG:
            sup_cpu = [hosts.cpu_seconds(pid) for pid in supervisors]
            rss = [peak_rss_mb(pid) for pid in supervisors]
            poller = {watch.inner().pid}
            head_cpu, head_pss = host_usage(hs[0], poller)
            cpu_s = head_cpu + sum(host_usage(h, memory=False)[0] for h in hs[1:])
            for mid, value in (("join", statistics.median(joins)), ("join_worst", max(joins)),
                               ("supervisor_rss", max(rss) if None not in rss else None),
                               ("head_cpu", head_cpu), ("head_memory", head_pss), ("cpu", cpu_s),
                               ("floor", cpu_s / (os.cpu_count() or 1)),
                               ("supervisor_cpu", None if None in sup_cpu else sum(sup_cpu))):
                c.add(f"cluster.n{BIG}_{mid}", side, value)
            msg += (f"; joins median {statistics.median(joins):.2f} s, worst {max(joins):.2f} s after the GCS; "
                    f"cluster {cpu_s:.1f} CPU s; head host {head_cpu:.1f} CPU s, {head_pss:.0f} MB PSS; "
                    f"supervisors' peak RSS {min(rss):.1f}-{max(rss):.1f} MB")
        if n == 1:
            stop, exited, orphans = hosts.timed_stop(hs[1], workers[0])
            c.add("stop.worker", side, stop)
            c.add("stop.worker_orphans", side, orphans)
            msg += f"; worker stop {_s(stop)} (exit {_s(exited)}), orphans {orphans}"
        log(msg)
    finally:
        lan.close()


def run(c, reps, log):
    declare(c)
    for i in range(reps):
        for n in SIZES:
            for mode in (("ours", "plain") if i % 2 == 0 else ("plain", "ours")):
                try:
                    one(c, mode, n, lambda msg: log(f"cluster rep {i + 1}: {msg}"))
                except Exception as exc:
                    log(f"cluster rep {i + 1}: {mode} N={n} FAILED: {exc}")
