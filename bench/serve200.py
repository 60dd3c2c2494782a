"""A head with the sample Serve application, each rep on a fresh host (formerly bench/serve_ready.py):

- `seedcore-boot head --serve-http-host 127.0.0.1`: the command line to the first 200 from the app's
  /health (polled every 20 ms from inside the host); then SIGTERM to every process gone.
- by hand: plain `ray start --head --block` with the same ports, `serve deploy` of the very config the head
  PUTs once Ray printed "Ray runtime started.", the same polling; then SIGTERM to `ray start`.

Both beside bench/sampler.py: the start timeline to the first 200 and the floor of each rep (bench/timeline.py).

Also the preflight of seedcore-boot's full port plan (Serve's port included): its own log line, and
seedcore_boot.host.ports.check() of the same plan timed in-process inside the host (5 calls).
"""

import json

from tests.nshost import NsHost

from . import hosts, sampler, timeline
from .head import TARGET_STOP, _s, add_floor, main_ports

HEALTH = "http://127.0.0.1:8000/health"

# Inside a host: the head's full port plan, as `seedcore-boot head` makes it, probed 5 times.
PREFLIGHT = r"""
import json, time
from seedcore_boot.node.plan import make_plan
from seedcore_boot.host import ports
from seedcore_boot.config.settings import resolve
plan = make_plan(resolve({"serve_http_host": "127.0.0.1"}), "head")
times = []
for _ in range(5):
    t = time.perf_counter()
    statuses = ports.check(plan.ports)
    times.append((time.perf_counter() - t) * 1000)
print(json.dumps({"ports": len(plan.ports), "ms": times, "free": all(s.free for s in statuses)}))
"""


def declare(c):
    c.declare("serve.first_200", "Serve: command to the first 200 from the sample app", "s",
              "seedcore-boot head", "by hand: ray start, serve deploy, poll", {"kind": "ratio_max", "value": 0.70})
    c.declare("serve.floor", "Serve: the floor to the first 200 on this machine (CPU that must be spent / cores, or "
              "the longest chain of waits, the larger; the timeline below)", "s", "the same for both sides")
    c.declare("serve.over_floor", "Serve: first 200 minus the floor", "s", "seedcore-boot head",
              "by hand: ray start, serve deploy, poll")
    c.timeline("serve", "Start timeline: a head with the sample app, to its first 200", timeline.CHAINS["serve"])
    c.declare("stop.head_serve", "stop: head with Serve, SIGTERM to all processes gone", "s",
              "seedcore-boot head", "ray start --head --block + serve deploy, SIGTERM", TARGET_STOP)
    c.declare("stop.head_serve_orphans", "stop: head with Serve, processes left 1 s after exit", "count",
              "seedcore-boot head", "ray start --head --block + serve deploy, SIGTERM", {"kind": "zero"})
    c.declare("preflight.full", "preflight: the head's full port plan (with Serve), in-process", "ms",
              "seedcore_boot.host.ports.check", None, {"kind": "max", "value": 50})
    c.declare("preflight.log", "preflight: the same, as the head's log line says (1 ms resolution)", "ms",
              "seedcore-boot head", None, {"kind": "max", "value": 50})


def _ours(c, log):
    host = NsHost("bench-serve-ours")
    try:
        out = host.python(PREFLIGHT, timeout=60)
        pre = json.loads(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else None
        for x in (pre or {}).get("ms", []):
            c.add("preflight.full", "ours", x)
        poll = hosts.poller(host, hosts.POLL_200, HEALTH, 180)
        watch = sampler.start(host)
        t0 = hosts.time.monotonic()
        proc = host.spawn([*hosts.BOOT, "head", "--serve-http-host", "127.0.0.1"])
        first = hosts.poll_result(poll, 190) - t0
        run = _summary(host, watch, t0, first, proc)
        ready = hosts.stamp(proc, "head ready", 120) - t0
        stop, exited, orphans = hosts.timed_stop(host, proc)
        pf, nports = hosts.preflight_ms(proc)
        c.add("serve.first_200", "ours", first)
        c.add("stop.head_serve", "ours", stop)
        c.add("stop.head_serve_orphans", "ours", orphans)
        c.add("preflight.log", "ours", pf)
        log(f"seedcore-boot: first 200 {first:.2f} s (head ready {ready:.2f} s), stop {_s(stop)} (exit "
            f"{_s(exited)}), orphans {orphans}; preflight {pf} ms in the log for {nports} ports, in-process "
            f"{', '.join(f'{x:.1f}' for x in (pre or {}).get('ms', []))} ms for {(pre or {}).get('ports')} ports")
        return run
    finally:
        host.close()


def _summary(host, watch, t0, first, proc):
    marker = next((t for t, l in zip(list(proc.stamps), list(proc.lines)) if hosts.MARKER in l), None)
    return timeline.summarize(sampler.collect(host, watch), t0, t0 + first, marker, first_200=t0 + first,
                              main_ports=main_ports(hosts.DEFAULTS), nproc=hosts.os.cpu_count())


def _by_hand(c, log):
    host = NsHost("bench-serve-hand")
    try:
        argv, plan = hosts.plain_argv("head", serve_http_host="127.0.0.1")
        host.write("/tmp/serve.yaml", json.dumps(plan.serve))  # the config the head PUTs (YAML is JSON)
        poll = hosts.poller(host, hosts.POLL_200, HEALTH, 180)
        watch = sampler.start(host)
        t0 = hosts.time.monotonic()
        proc = host.spawn(argv, env=hosts.UNBUFFERED)
        hosts.stamp(proc, hosts.MARKER, 120)
        deploy = host.run([hosts.SERVE, "deploy", "/tmp/serve.yaml"], timeout=120)
        if deploy.returncode != 0:
            raise RuntimeError(f"serve deploy: {deploy.stdout[-300:]}{deploy.stderr[-300:]}")
        first = hosts.poll_result(poll, 190) - t0
        run = _summary(host, watch, t0, first, proc)
        stop, exited, orphans = hosts.timed_stop(host, proc)
        c.add("serve.first_200", "baseline", first)
        c.add("stop.head_serve", "baseline", stop)
        c.add("stop.head_serve_orphans", "baseline", orphans)
        log(f"by hand: first 200 {first:.2f} s, stop {_s(stop)} (exit {_s(exited)}), orphans {orphans}")
        return run
    finally:
        host.close()


def run(c, reps, log):
    declare(c)
    for i in range(reps):
        order = [_ours, _by_hand] if i % 2 == 0 else [_by_hand, _ours]
        runs = {}
        say = lambda msg: log(f"serve rep {i + 1}: {msg}")  # noqa: E731
        for fn in order:
            try:
                runs[fn] = fn(c, say)
            except Exception as exc:
                log(f"serve rep {i + 1}: {fn.__name__} FAILED: {exc}")
        add_floor(c, "serve", runs.get(_ours), runs.get(_by_hand), say)
