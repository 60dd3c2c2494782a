"""A worker and its head: parse the address, resolve the name, and ask the GCS itself whether it is
healthy, with backoff, jitter, a cap and progress lines, bounded by our own wait_timeout; then watch it
through every later phase (headwatch.py).

Plain `ray start --address` against an unreachable head retries silently for ~142 s; this wait is visible.
"""

import random
import socket
import time

from .. import RAY_VERSION
from ..config.addresses import host_port, parse_head_address
from ..errors import BootError
from ..host import nodeaddr
from ..ray import raydeath, raytemp
from ..ray.gcsprobe import GcsError, check_gcs, cluster_id, cluster_versions, handshake_failure, internal_config
from ..tls import nodetls as tls
from .headwatch import HeadWatch

BACKOFF_CAP = 0.25


def resolve(host):
    """The head's IP, or raises OSError (a name that does not resolve *yet* is normal at container start)."""
    infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return infos[0][4][0]


def check_versions(where, versions):
    """Ray refuses a node whose Python differs from the head's at the patch level, but only at join time,
    deep in `ray start`'s output (ray#44063): refuse here, in one line, before Ray starts."""
    import platform

    if versions is None:
        return
    ray_version, python_version = versions
    ours = (RAY_VERSION, platform.python_version())
    if (ray_version, python_version) != ours:
        raise BootError(f"the head at {where} runs Ray {ray_version} on Python {python_version}; this worker has "
                        f"Ray {ours[0]} on Python {ours[1]}: Ray requires the same Ray and Python (to the patch "
                        "version) on every node",
                        "build head and workers from the same image, or install the same Python and Ray")


def wait_for_head(address, timeout, sleep, log, progress_every=5.0):
    """Return the head's (host, port, ip) once its GCS is healthy; BootError (exit 1) on the deadline.

    timeout 0 waits forever. sleep() is the supervisor's, so a SIGTERM during the wait stops it.
    """
    host, port = parse_head_address(address)
    head = host_port(host, port)
    start = time.monotonic()
    deadline = start + timeout if timeout else None
    delay, last_error, next_log, attempts = 0.1, "no attempt yet", start + progress_every, 0
    log.event("wait", f"waiting for the head at {head}"
              + (f" (up to {timeout:g} s)" if timeout else " (no time limit)"))
    while True:
        attempts += 1
        left = (deadline - time.monotonic()) if deadline else 5.0
        try:
            ip = resolve(host)
        except OSError as exc:
            ip, last_error = None, f"name {host!r} does not resolve ({exc.strerror or exc})"
        if ip:
            ok, detail, version = check_gcs(ip, port, timeout=max(0.2, min(3.0, left)))
            if ok:
                if version and version != RAY_VERSION:
                    raise BootError(f"the head at {head} runs Ray {version}; this worker has Ray {RAY_VERSION}",
                                    "run the same Ray version on every node")
                log.event("wait", f"head at {head} ({ip}) is healthy after "
                          f"{time.monotonic() - start:.1f} s, {attempts} attempt(s)")
                return host, port, ip
            failed = handshake_failure(ip, port, detail)
            if failed:  # it will not heal: say why now, rather than retry until wait_timeout as Ray would
                raise BootError(f"the TLS handshake with the head at {head} ({ip}) failed: {failed[0]}",
                                failed[1])
            last_error = f"{host_port(ip, port)}: {detail}"
        now = time.monotonic()
        if deadline and now >= deadline:
            raise BootError(f"the head at {head} was not reachable within {timeout:g} s "
                            f"(last error: {last_error})",
                            "check the address and that the head is up; raise wait_timeout (0 waits forever)")
        if now >= next_log:
            log.event("wait", f"still waiting for {head} ({now - start:.0f} s, {attempts} attempts; "
                      f"last error: {last_error})")
            next_log = now + progress_every
        # Exponential backoff with jitter, capped low: a probe is one small gRPC call, and every second of
        # cap is up to a second of join latency once the head appears (measured: a 5 s cap cost ~3 s).
        pause = min(delay, BACKOFF_CAP) * random.uniform(0.8, 1.2)
        if deadline:
            pause = max(0.0, min(pause, deadline - now))
        sleep(pause)
        delay *= 2


def before_start(settings, log, env):
    """The worker's steps before `ray start` (node.run's wait_first): wait for a healthy head, refuse a node
    address the head could not reach (nodeaddr), then watch the head through every later phase (headwatch).
    Returns the temp dir the worker's Ray will use: the head's (raytemp.py)."""

    def wait_first(sup):
        host, port, ip = wait_for_head(settings.head_address, settings.wait_timeout, sup.sleep, log)
        check_versions(host_port(host, port), cluster_versions(ip, port))
        mine = nodeaddr.check_worker(settings, ip, port, log)
        tls.check_worker_address(settings, mine)  # a certificate of the user's must name it (tls/nodetls.py)
        wait_s, why, cluster = head_patience(settings, env, ip, port)
        raylet = float(sup.env.get("RAY_gcs_rpc_server_reconnect_timeout_s") or 0)
        if raylet and raylet < wait_s:
            log.warn("wait", f"this worker's raylet gives up on an unreachable head after {raylet:g} s "
                     f"(RAY_gcs_rpc_server_reconnect_timeout_s), before the head would declare it dead "
                     f"({wait_s:g} s): export the head's RAY_health_check_* settings here too, or set head_lost_timeout")
        log.event("wait", f"joined cluster {cluster[:12] or '(id unknown)'}; a head this worker cannot reach is "
                  f"waited for {wait_s:g} s {why}")
        sup.head = HeadWatch(host, port, ip, wait_s, why, cluster, log, resolve)
        sup.guards.append(sup.head.check)
        return raytemp.of_head(ip, port, sup.sleep)

    return wait_first


def head_patience(settings, env, ip, port):
    """(seconds to wait for a head that does not answer, why that long, the cluster id joined).

    head_lost_timeout, when set, is the user's figure; otherwise as long as the head takes to declare this
    node dead (raydeath.py), from the head's system config and our environment."""
    try:
        cluster = cluster_id(ip, port)
        config = "" if settings.head_lost_timeout else internal_config(ip, port)
    except GcsError:
        cluster, config = "", ""  # the watch's first checks say whether the head is there at all
    if settings.head_lost_timeout:
        return settings.head_lost_timeout, "(head_lost_timeout)", cluster
    ray = raydeath.threshold(env, config)
    return ray.seconds, f"as Ray would (the head declares a node dead after {ray.describe()})", cluster
