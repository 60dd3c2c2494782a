"""A head without Serve, each rep on fresh hosts, in turn:

- `seedcore-boot head --no-serve`: the command line to "Ray runtime started." and to "head ready"; the
  peak RSS of the seedcore-boot process itself; `--help`, `check-ports` (before the start) and `status`
  (while it runs); SIGTERM to every process of the node gone.
- plain `ray start --head --block` with the same ports and flags: to the marker, to the same endpoints
  answering (seedcore_boot.ray.health's probes, polled from inside the host); the peak RSS of the `ray start`
  process; `ray --help`, `ray status`; SIGTERM to every process gone.
- plain `ray start --head` and then `ray stop` (on that isolated host only): to every process gone.

Every start runs beside bench/sampler.py: the start timeline of each side (bench/timeline.py: when each
process was spawned, when its port answered, its CPU until ready) and the floor of each rep.

Also the raylet's 1 s object-store socket retry, from raylet.out ("Starting object store" to
"ObjectManager server started"), which seedcore-boot's RAY_raylet_client_* defaults avoid (formerly
bench/head_start.py).
"""

import re
from datetime import datetime

from tests.nshost import NsHost

from . import hosts, sampler, timeline

TARGET_STOP = {"kind": "diff_max", "value": 0.2}


def declare(c):
    c.declare("head.marker", 'head: command to "Ray runtime started."', "s", "seedcore-boot head --no-serve",
              "ray start --head --block", {"kind": "ratio_max", "value": 0.50})
    c.declare("head.ready", "head: command to ready (every endpoint answering)", "s",
              'seedcore-boot "head ready"', "ray start --head --block, endpoints polled",
              {"kind": "ratio_max", "value": 0.70})
    c.declare("head.floor", "head: the floor on this machine (CPU that must be spent / cores, or the longest chain "
              "of waits, the larger; the timeline below)", "s", "the same for both sides")
    c.declare("head.over_floor", "head: ready minus the floor", "s", "seedcore-boot head --no-serve",
              "ray start --head --block, endpoints polled")
    c.timeline("head", "Start timeline: a head without Serve, to ready", timeline.CHAINS["head"])
    c.declare("head.raylet_retry", "head: the raylet slept 1 s on its object-store socket (1 = it did)", "count",
              "seedcore-boot", "plain")
    c.declare("stop.head", "stop: head without Serve, SIGTERM to all processes gone", "s",
              "seedcore-boot head --no-serve", "ray start --head --block, SIGTERM", TARGET_STOP)
    c.declare("stop.head_orphans", "stop: head without Serve, processes left 1 s after exit", "count",
              "seedcore-boot", "ray start --head --block, SIGTERM", {"kind": "zero"})
    c.declare("stop.ray_stop", "stop: head, plain Ray's other way: `ray start --head`, then `ray stop`, to all "
              "processes gone", "s", "-", "ray stop")
    c.declare("stop.ray_stop_orphans", "stop: `ray stop`, processes left 1 s after it returned", "count",
              "-", "ray stop")
    c.declare("supervisor.rss", "supervisor: peak RSS of the process itself while a head runs", "MB",
              "seedcore-boot (python)", "`ray start --block` (python)", {"kind": "max", "value": 60})
    c.declare("cli.help", "cli: `--help`", "ms", "seedcore-boot --help", "ray --help")
    c.declare("cli.status", "cli: `status` against a running head", "ms", "seedcore-boot status", "ray status")
    c.declare("cli.check_ports", "cli: `seedcore-boot check-ports` (fresh host)", "ms", "seedcore-boot check-ports")


def raylet_slept(host):
    try:
        text = host.read("/tmp/ray/session_latest/logs/raylet.out")

        def at(mark):
            line = next(l for l in text.splitlines() if mark in l)
            return datetime.strptime(re.search(r"\d\d:\d\d:\d\d,\d+", line).group(0), "%H:%M:%S,%f")

        return int((at("ObjectManager server started") - at("Starting object store")).total_seconds() > 0.5)
    except (OSError, StopIteration, AttributeError):
        return None


def main_ports(settings):
    """The port that says each kind of process answers (bench/timeline.py)."""
    return {"gcs_server": settings.gcs_port, "dashboard": settings.dashboard_port,
            "ray_client_server": settings.client_port, "dashboard_agent": settings.dashboard_agent_http_port,
            "autoscaler_monitor": settings.autoscaler_metrics_port, "serve proxy": settings.serve_http_port}


def _head(c, log, side):
    """One `--block` head of `side` ("ours" or "baseline"): start, marker, ready, status, RSS, stop; returns
    its timeline summary."""
    ours = side == "ours"
    cli = hosts.BOOT if ours else [hosts.RAY]
    host = NsHost(f"bench-head-{'ours' if ours else 'plain'}")
    try:
        timed = hosts.time_cmds(host, [[*cli, "--help"]] + ([[*cli, "check-ports"]] if ours else []))
        help_s = timed[0][0]
        c.add("cli.help", side, help_s * 1000)
        if ours:
            ports_s, ports_rc = timed[1]
            c.add("cli.check_ports", side, ports_s * 1000 if ports_rc == 0 else None)
            argv, env, ready_poll = [*cli, "head", "--no-serve"], None, None
        else:  # the same endpoints our "head ready" waits for, polled from inside the host
            argv, env = hosts.plain_argv("head")[0], hosts.UNBUFFERED
            ready_poll = hosts.poller(host, hosts.POLL_READY, 120)
        watch = sampler.start(host)
        t0 = hosts.time.monotonic()
        proc = host.spawn(argv, env=env)
        rss = hosts.RssWatch(proc.inner().pid)
        marker = hosts.stamp(proc, hosts.MARKER, 120) - t0
        ready = (hosts.stamp(proc, "head ready", 120) if ours else hosts.poll_result(ready_poll, 130)) - t0
        run = timeline.summarize(sampler.collect(host, watch), t0, t0 + ready, t0 + marker,
                                 main_ports=main_ports(hosts.DEFAULTS), nproc=hosts.os.cpu_count())
        (status_s, status_rc), = hosts.time_cmds(host, [[*cli, "status"]])
        peak = rss.stop()
        stop, exited, orphans = hosts.timed_stop(host, proc)
        for mid, value in (("head.marker", marker), ("head.ready", ready), ("supervisor.rss", peak),
                           ("cli.status", status_s * 1000 if status_rc == 0 else None), ("stop.head", stop),
                           ("stop.head_orphans", orphans), ("head.raylet_retry", raylet_slept(host))):
            c.add(mid, side, value)
        log(f"{'seedcore-boot' if ours else 'plain --block'}: marker {marker:.2f} s, ready {ready:.2f} s, rss "
            f"{peak:.1f} MB, status {status_s * 1000:.0f} ms (rc {status_rc}), stop {_s(stop)} (exit "
            f"{_s(exited)}), orphans {orphans}, --help {help_s * 1000:.0f} ms"
            + (f", check-ports {ports_s * 1000:.0f} ms" if ours else ""))
        return run
    finally:
        host.close()


def _ours(c, log):
    return _head(c, log, "ours")


def _plain_block(c, log):
    return _head(c, log, "baseline")


def _plain_ray_stop(c, log):
    host = NsHost("bench-head-raystop")
    try:
        argv, _ = hosts.plain_argv("head", block=False)
        out = host.run(argv, env=hosts.UNBUFFERED, timeout=120)
        if out.returncode != 0:
            raise RuntimeError(f"ray start --head: {out.stdout[-300:]}{out.stderr[-300:]}")
        stop, exited, orphans = hosts.timed_stop(host, None, command=[hosts.RAY, "stop"])
        c.add("stop.ray_stop", "baseline", stop)
        c.add("stop.ray_stop_orphans", "baseline", orphans)
        log(f"ray start + ray stop: stop {_s(stop)} (ray stop returned {_s(exited)}), orphans {orphans}")
    finally:
        host.close()


def _s(x):
    return "-" if x is None else f"{x:.2f} s"


def add_floor(c, name, ours, plain, log):
    """The rep's timelines of both sides, and its floor when both ran (bench/timeline.py)."""
    for side, run in (("ours", ours), ("baseline", plain)):
        if run:
            c.add_run(name, side, run)
    if ours and plain:
        f = timeline.floor(ours, plain, timeline.CHAINS[name], ours["nproc"] or 1)
        c.add_floor(name, f)
        c.add(f"{name}.floor", "ours", f["floor"])
        c.add(f"{name}.over_floor", "ours", f["ours"])
        c.add(f"{name}.over_floor", "baseline", f["plain"])
        log(f"floor {f['floor']:.2f} s (CPU {f['cpu']:.2f} s / {f['nproc']} cores = {f['cpu_floor']:.2f} s, chain "
            f"{f['chain']:.2f} s): seedcore-boot {f['ours']:+.2f} s, plain {f['plain']:+.2f} s from it")


def run(c, reps, log):
    declare(c)
    for i in range(reps):
        order = [_ours, _plain_block, _plain_ray_stop]
        if i % 2:
            order = order[::-1]  # alternate, so drift hits both alike
        runs = {}
        say = lambda msg: log(f"head rep {i + 1}: {msg}")  # noqa: E731
        for fn in order:
            try:
                runs[fn] = fn(c, say)
            except Exception as exc:  # a failed rep is reported and skipped, the run goes on
                log(f"head rep {i + 1}: {fn.__name__} FAILED: {exc}")
        add_floor(c, "head", runs.get(_ours), runs.get(_plain_block), say)
