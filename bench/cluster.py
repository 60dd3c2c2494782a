"""Cluster formation: a head and N workers on N+1 hosts of one emulated LAN (tests.nshost.Lan, 10.200.0.N),
N = 1, 2, 4, all commands started together (head first); from the first command to N+1 nodes alive and a
task run on every node (a driver on the head's host, Ray imported before the clock starts, asks the
dashboard for the head's node, then ray.nodes() for N+1 alive, then runs one task pinned to each node).
seedcore-boot `head --no-serve` / `worker` against plain `ray start --block` with the same ports and flags.
With N = 1 the worker is then stopped (SIGTERM until every process of it on its host is gone).
"""

import os

from tests.nshost import Lan

from . import hosts
from .head import TARGET_STOP, _s

SIZES = (1, 2, 4)
HEAD = "10.200.0.1"

CHECK = r"""
import json, sys, time, urllib.request
n, limit = int(sys.argv[1]), float(sys.argv[2])
import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

@ray.remote
def where():
    return ray.get_runtime_context().get_node_id()

def alive():
    try:
        with urllib.request.urlopen("http://127.0.0.1:8265/nodes?view=summary", timeout=1) as r:
            return sum(x["raylet"]["state"] == "ALIVE" for x in json.loads(r.read())["data"]["summary"])
    except Exception:
        return 0

print("polling", flush=True)
end = time.monotonic() + limit
while alive() < 1:
    if time.monotonic() > end:
        print("timeout", flush=True); sys.exit(1)
    time.sleep(0.05)
ray.init(address=sys.argv[3], logging_level="ERROR", log_to_driver=False)
while True:
    nodes = [x for x in ray.nodes() if x["Alive"]]
    if len(nodes) >= n:
        break
    if time.monotonic() > end:
        print("timeout", flush=True); sys.exit(1)
    time.sleep(0.05)
refs = [where.options(scheduling_strategy=NodeAffinitySchedulingStrategy(x["NodeID"], soft=False)).remote()
        for x in nodes]
got = ray.get(refs, timeout=max(1, end - time.monotonic()))
assert sorted(got) == sorted(x["NodeID"] for x in nodes), (got, nodes)
print(f"up {time.monotonic()}", flush=True)
ray.shutdown()
"""


def declare(c):
    for n in SIZES:
        c.declare(f"cluster.n{n}", f"cluster: head + {n} worker(s) on {n + 1} hosts, first command to "
                  f"{n + 1} nodes alive and a task run on each", "s", "seedcore-boot head + worker",
                  "ray start --block on the same hosts", {"kind": "ratio_max", "value": 0.70} if n == 4 else None)
    c.declare("cluster.n4_busy", "cluster: head + 4 workers, share of the 2 CPUs busy while forming", "%",
              "seedcore-boot", "plain", None, note="near 100 %: the machine, not waiting, is the floor")
    c.declare("cluster.n4_cpu_total", "cluster: head + 4 workers, CPU seconds the whole machine spent while forming",
              "s", "seedcore-boot", "plain")
    c.declare("cluster.n4_floor", "cluster: head + 4 workers, that CPU time spread over every CPU (the least "
              "wall time that work needs here)", "s", "seedcore-boot", "plain")
    c.declare("cluster.n4_supervisor_cpu", "cluster: head + 4 workers, CPU seconds of the 5 supervising "
              "processes while forming", "s", "seedcore-boot processes", "`ray start --block` processes")
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


def marks(head, workers, t0):
    """When each node printed "Ray runtime started.", from the first command (where the time goes)."""
    out = []
    for p in [head, *workers]:
        t = next((t for t, l in zip(list(p.stamps), list(p.lines)) if hosts.MARKER in l), None)
        out.append("-" if t is None else f"{t - t0:.1f}")
    return "head " + out[0] + (", workers " + " ".join(out[1:]) if out[1:] else "") + " s"


def one(c, mode, n, log):
    side = "ours" if mode == "ours" else "baseline"
    lan = Lan(f"b{mode[0]}")
    try:
        hs = [lan.host(k) for k in range(1, n + 2)]
        head_argv, worker_argvs, env = commands(mode, n)
        check = hosts.poller(hs[0], CHECK, n + 1, 240, f"{HEAD}:6379")
        ticks = hosts.cpu_ticks()
        t0 = hosts.time.monotonic()
        head = hs[0].spawn(head_argv, env=env)
        workers = [h.spawn(a, env=env) for h, a in zip(hs[1:], worker_argvs)]
        supervisors = [p.inner().pid for p in [head, *workers]]
        formed = hosts.poll_result(check, 250) - t0
        busy, cpu_s = hosts.busy_since(ticks)
        busy *= 100
        sup_cpu = [hosts.cpu_seconds(pid) for pid in supervisors]
        sup_cpu = None if None in sup_cpu else sum(sup_cpu)
        c.add(f"cluster.n{n}", side, formed)
        if n == 4:
            c.add("cluster.n4_busy", side, busy)
            c.add("cluster.n4_supervisor_cpu", side, sup_cpu)
            c.add("cluster.n4_cpu_total", side, cpu_s)
            c.add("cluster.n4_floor", side, cpu_s / (os.cpu_count() or 1))
        msg = (f"{mode} N={n}: formed in {formed:.2f} s, CPUs {busy:.0f} % busy ({cpu_s:.1f} CPU s), "
               f"supervisors' CPU "
               f"{'-' if sup_cpu is None else f'{sup_cpu:.1f} s'}; markers {marks(head, workers, t0)}")
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
