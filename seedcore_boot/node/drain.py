"""A worker's drain on SIGTERM: Serve leaves the node before Ray stops, so a stop fails no request.

Measured (bench/drain.py: a head holding no replica, three 1-CPU workers, 2 replicas at most 1 per node,
4 clients through the head's proxy): SIGTERM to a plain `ray start --block` worker holding a replica
failed 54-67 of ~260 requests, until Serve noticed the dead replica. The drain:

1. when a Serve replica or proxy runs on the node (else Ray's stop follows at once and nothing waits),
   marks the node draining in the GCS (DrainNode with reason PREEMPTION, which the raylet accepts on a
   busy node, and a deadline of now + drain_timeout): the GCS schedules nothing new here;
2. waits until no Serve replica or proxy runs on this node any more. Serve moves them: a head started by
   seedcore-boot runs its controller with servedrain.py, so it starts each replacement elsewhere first,
   then stops the old replica gracefully (in-flight requests finish) and drains the node's proxy. Serve
   stops a replica on its own once `deadline - graceful_shutdown_timeout_s` (20 s by default) has passed,
   replacement or not, so a drain_timeout under that stops replicas at once (still gracefully);
3. gives up at drain_timeout, a second signal, Ray exiting or the head going away, and says so; then the
   node stops as before.

The replicas and proxies are found as our own descendants by their process titles (Ray names an actor's
worker process `ray::<class>`; Serve's are ServeReplica:<app>:<deployment> and ProxyActor): no Ray import,
no call to a head that may be going away too.
"""

import os
import time

import psutil

from ..config.addresses import host_port, parse_head_address
from ..errors import BootError
from ..log import ms
from ..ray import gcsprobe, raylogs
from . import headwait

SERVE_TITLES = ("ray::ServeReplica", "ray::ProxyActor")


def serve_actors(procs):
    """The Serve replica and proxy processes among procs, as their titles."""
    found = []
    for proc in procs:
        try:
            argv = proc.cmdline()
            title = argv[0] if argv else ""
            if not title.startswith(SERVE_TITLES) or proc.status() == psutil.STATUS_ZOMBIE:
                continue
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        found.append(title.split(".", 1)[0].split(" ", 1)[0][len("ray::"):])
    return found


def drain(sup, settings, log, why):
    """Drain the worker's node before it stops. Returns True when Serve left it in time (or had nothing
    here), False when the drain was cut short or could not be asked for; it never raises."""
    timeout = settings.drain_timeout
    if timeout <= 0 or sup.proc is None or sup.returncode is not None or not sup.node_ip:
        return True  # nothing to drain: no drain asked for, or no node registered yet
    here = serve_actors(sup.descendants())
    if not here:  # Ray's own stop follows at once: nothing could be scheduled here in between that matters
        log.event("drain", "no Serve actor on this node: nothing to drain")
        return True
    start = time.monotonic()
    deadline = start + timeout
    try:
        node = _mark_draining(sup, settings, why, timeout)
    except (gcsprobe.GcsError, OSError) as exc:
        log.warn("drain", f"cannot mark this node draining: {exc}; stopping without a drain")
        return False
    if node is None:
        log.warn("drain", f"the head knows no live node at {host_port(sup.node_ip, settings.node_manager_port)}; "
                 "stopping without a drain")
        return False
    log.event("drain", f"node {node[:12]} marked draining for {timeout:g} s (drain_timeout); waiting for Serve "
              f"to move {', '.join(sorted(here))}")
    while here:
        cause = _cut_short(sup, deadline, timeout)
        if cause:
            log.warn("drain", f"drain cut short by {cause} after {ms(time.monotonic() - start)}: still on this "
                     f"node: {', '.join(sorted(here))}; their in-flight requests may fail")
            return False
        time.sleep(0.1)
        here = serve_actors(sup.descendants())
    log.event("drain", f"drained in {ms(time.monotonic() - start)}: no Serve actor left on this node")
    return True


def _head(sup, settings):
    """(ip, port) of the head's GCS now: the watch's address (resolved again, or the last that answered)."""
    host, port = parse_head_address(settings.head_address)
    return (sup.head.current_ip() if sup.head else headwait.resolve(host)), port


def _mark_draining(sup, settings, why, timeout):
    ip, port = _head(sup, settings)
    node = gcsprobe.node_id(ip, port, sup.node_ip, settings.node_manager_port)
    if node is None:
        return None
    deadline_ms = int((time.time() + timeout) * 1000)
    accepted, rejected = gcsprobe.drain_node(ip, port, node, f"seedcore-boot worker stopping ({why})", deadline_ms)
    if not accepted:
        raise gcsprobe.GcsError(f"the GCS refused to drain node {node[:12]}: {rejected or 'no reason given'}")
    return node


def _cut_short(sup, deadline, timeout):
    """Why the drain must end now with Serve actors still here, or None."""
    if sup.hurry:
        return "a second signal"
    sup.reap()
    if sup.returncode is not None:
        return "Ray exiting"
    if _head_gone(sup):
        return "the head going away"
    if time.monotonic() >= deadline:
        return f"drain_timeout ({timeout:g} s)"
    return None


def _head_gone(sup):
    """A worker's head watch (headwait.HeadWatch) says the head is lost: Serve cannot move anything now."""
    for guard in sup.guards:
        try:
            guard()
        except BootError:
            return True
    return False


# --- a drain someone else asked for --------------------------------------------------------------------
# Measured on Ray 2.20 (a worker, then GetAllNodeInfo and the raylet's own log): Ray's autoscaler v1, which
# KubeRay runs, scales a group down with drain_nodes_via_gcs (NodeInfoGcsService.DrainNode); the GCS then
# shuts the raylet down, the raylet logs "Shutdown RPC has received", and the node is DEAD with no death
# reason. `ray drain-node` and autoscaler v2 send AutoscalerStateService.DrainNode; an idle node (any node,
# once idle, for PREEMPTION) logs "Drain raylet RPC has received. ... Drain reason: MESSAGE", exits at once,
# and its death reason is AUTOSCALER_DRAIN_IDLE or AUTOSCALER_DRAIN_PREEMPTED. Either way `ray start --block`
# then exits 1 as if the raylet had crashed.
_GCS_SHUTDOWN = "Shutdown RPC has received"
_DRAIN_RPC = "Drain raylet RPC has received"


def by_cluster(sup, settings, since, ray_dir=None):
    """Why this worker's Ray ended, when it ended because the cluster drained the node (a line for the log),
    else None. Asked only once Ray has died on its own; it never raises. since: when this node started (epoch
    s); a container restarted in its pod finds the raylet.out of its earlier life in the same session dir.
    ray_dir: where its Ray keeps its logs, the head's temp dir (raytemp.py); default the temp_dir setting."""
    logs = raylogs.logs_dir(ray_dir or settings.temp_dir)
    said = [l for l in raylogs.tail(os.path.join(logs, "raylet.out"), 200)
            if (_GCS_SHUTDOWN in l or _DRAIN_RPC in l) and _stamp(l) >= since - 1]
    reason = None
    try:
        ip, port = _head(sup, settings)
        nodes = gcsprobe.nodes_at(ip, port, sup.node_ip, settings.node_manager_port, timeout=2.0)
        if nodes and not nodes[0][1] and nodes[0][3] in gcsprobe.DRAINED:
            reason = gcsprobe.DEATH_REASONS[nodes[0][3]]
    except (gcsprobe.GcsError, OSError, BootError):
        pass  # the raylet's own words still tell
    if not said and reason is None:
        return None
    last = said[-1] if said else ""
    message = last.split("Drain reason:", 1)[1].strip() if "Drain reason:" in last else ""
    how = ("the GCS shut the raylet down on a DrainNode request (Ray's autoscaler scaling this group down)"
           if _GCS_SHUTDOWN in last else "the raylet left on a drain request (ray drain-node, or the autoscaler)")
    detail = ", ".join(x for x in (reason, repr(message) if message else "") if x) or "no reason given"
    return f"this node was drained by the cluster ({detail}): {how}"


def _stamp(line):
    """Epoch seconds of a Ray C++ log line (`[2026-12-03 12:38:17,840 I 41 41] ...`, local time), or 0."""
    try:
        return time.mktime(time.strptime(line[1:20], "%Y-%m-%d %H:%M:%S"))
    except ValueError:
        return 0
