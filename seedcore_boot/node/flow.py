"""The flow of one node, head or worker: preflight, spawn, wait healthy, stay up, stop (its plan: plan.py).

Head and worker differ only in their argv, their port plan and the steps run once Ray is healthy
(the head deploys Serve); everything else is this one flow.
"""

import time
from typing import Callable

from ..config.addresses import host_port, parse_head_address
from ..errors import BootError
from ..host import exposure, hostcheck, leftovers, nodeaddr, portclaim, ports, state
from ..log import ms
from ..ray import components, gcsprobe, health, raycmd, raylogs, raytemp, redisft
from ..serve import deploy as serve
from ..tls import nodetls as tls
from . import drain, rayenv
from .headwatch import HeadLost
from .supervisor import ChildExited, StopRequested, Supervisor

FAILURE_GRACE = 3.0  # the node is already broken: no reason to wait the full grace before SIGKILL


def preflight(plan, log):
    t = time.monotonic()
    statuses = ports.check(plan.ports)
    busy = [st for st in statuses if not st.free]
    for st in busy[1:]:
        log.error("preflight", str(ports.busy_message(st)))
    if busy:
        raise ports.busy_message(busy[0])
    log.event("preflight", f"{len(statuses)} ports free ({ms(time.monotonic() - t)})")


def local_checks(plan, log):
    """The first checks of a start, which write and start nothing (--dry-run runs them too, dryrun.py): the
    dirs this node writes, and a head's address (a worker's is checked once it knows where its head is)."""
    s, role = plan.settings, plan.role
    if role == "head":
        state.check_writable(s, role)
        nodeaddr.check_head(s, log)
    else:
        state.check_dirs(state.own_dirs(s, role))


def security_warnings(settings, role, node_ip, log):
    if role == "head" and settings.dashboard_host in ("0.0.0.0", "::"):
        log.warn("security", f"the dashboard listens on all interfaces (port {settings.dashboard_port}); Ray "
                 "has no authentication, so anyone who can reach it can run code here: publish it only "
                 "to a trusted network")
    if role == "head" and node_ip and node_ip.startswith("127."):
        log.warn("network", f"the head's node address is {node_ip} (loopback): no worker on another host "
                 "can join; set node_ip_address to an address the workers can reach")


def run(plan, log, base_env, wait_first: Callable = None):
    """Run the node until stopped. Returns the exit code; raises BootError for failures."""
    s, role = plan.settings, plan.role
    env = rayenv.child_env(s, role, base_env, raycmd.gateable(plan.argv), node_tls=plan.tls)
    sup = Supervisor(plan.argv, env, log, s.grace_period, node_name=leftovers.node_name(s, role))
    sup.install_signal_handlers()  # from here on, SIGTERM at any phase means: stop, exit 0
    started_wall = time.time()
    for note in plan.notes:
        log.warn("settings", note)
    for decision in plan.host:
        log.event("host", decision.message, level=decision.level)
    ready_path = s.ready_path(role)
    node_path = issued = None
    phases = {}
    claims = portclaim.Claims()
    ray_dir = s.temp_dir  # where Ray keeps its files: a worker learns it from its head (raytemp.py)
    try:
        local_checks(plan, log)
        if role == "head":
            _prune(s, ray_dir, log)
        if role == "head" and s.redis_address:
            redisft.preflight(s, log, fresh=s.redis_fresh)
        hostcheck.raise_nofile(plan.nofile)
        claims = portclaim.claim(plan.ports)  # held to the end: no second node here passes the preflight
        preflight(plan, log)  # local mistakes fail now, not after a long wait for the head
        issued = _tls_preflight(plan, log, env)
        gated = wait_first is not None and raycmd.gateable(plan.argv)
        if gated:
            sup.start(gated=True)  # Ray's CLI imports (~1 s) while we wait, not once the head is up
        if wait_first:
            ray_dir = wait_first(sup) or ray_dir
            if role == "worker":
                _check_worker_temp_dir(s, ray_dir, log)
            preflight(plan, log)  # the wait may have been long: check again right before the start
        _test_hold("start", sup, log, base_env)
        sup.check()
        state.remove(ready_path)
        t = time.monotonic()
        deadline = t + s.ready_timeout
        pid = sup.release() if gated else sup.start()
        node_path = state.write_node(s, role, {p.name: p.port for p in plan.ports}, serve=bool(plan.serve),
                                     ray_temp_dir=ray_dir)
        log.event("start", f"started `ray {' '.join(plan.argv[plan.argv.index('start'):][:2])} ...` as pid {pid}")
        probes = health.node_probes(s, role)
        deployer = serve.Deployer(dashboard_url(s), plan.serve, plan.serve_health, log) if plan.serve else None
        serve_error = None
        while not sup.marker.is_set():
            if time.monotonic() >= deadline:
                raise BootError(f"Ray did not print {'Ray runtime started.'!r} within {s.ready_timeout:g} s",
                                "read the Ray output above; raise ready_timeout if the machine is slow")
            sup.sleep(0.05)
        phases["ray start"] = time.monotonic() - t
        if sup.head and sup.node_ip:  # the raylet registered before the marker: from now on the head must know it
            sup.head.watch_node(sup.node_ip, s.node_manager_port)
        log.event("start", f"ray runtime started ({ms(phases['ray start'])})")
        security_warnings(s, role, sup.node_ip, log)
        _test_hold("health", sup, log, base_env)
        t = time.monotonic()
        if deployer:
            # Deploy as soon as the dashboard answers after the marker, not before it: the dashboard's first
            # Serve request connects to Ray as a driver, and before the raylet has registered (just before
            # the marker) that connect retries with 1 s sleeps (measured: the deploy came up ~0.9 s later).
            # The dashboard now starts beside the raylet (raycli), so it usually answers after the marker
            # anyway. The rest of the node comes up meanwhile.
            dashboard = [p for p in probes if p.name == "dashboard"]
            health.wait_all(dashboard, deadline, sup.sleep, what=f"the {role}")
            t_serve = _start_serve(deployer, plan, log)
        health.wait_all(probes, deadline, sup.sleep, what=f"the {role}")
        present = sup.watch_components()
        missing = [c for c in components.expected(s, role) if c not in present]
        if missing:
            raise BootError(f"Ray started without {', '.join(missing)}", "read the Ray log tails above")
        phases["health"] = time.monotonic() - t
        endpoints = endpoints_of(s, role, sup.node_ip)
        resources = components.advertised(sup.components.values())  # what Ray made of the host checks
        if deployer:
            # Ray is ready before Serve is: readiness without Serve (`status --no-serve`, a head's Kubernetes
            # readinessProbe) must not wait for an app whose replicas need workers that cannot join a head
            # that is not Ready (its Service has no endpoints until then).
            state.write_ready(ready_path, endpoints, serve="deploying")
            log.event("ready", f"{role} healthy in {ms(log.elapsed())}; waiting for Serve")
            try:
                deployer.join_put(deadline, sup.sleep)
                endpoints.update(deployer.wait(deadline, sup.sleep))
                phases["serve"] = time.monotonic() - t_serve
            except serve.ServeFailed as exc:
                serve_error = exc
        if serve_error:
            serve.show_serve_tails(log, s.temp_dir, started_wall)
            if not s.serve_optional:
                raise serve_error
            log.error("serve", f"SERVE IS DOWN: {serve_error}; the head keeps running because serve_optional "
                      "is set")
            endpoints["serve"] = "DOWN"
        state.write_ready(ready_path, endpoints, serve=("down" if serve_error else "running") if deployer else None)
        timing = ", ".join(f"{k} {ms(v)}" for k, v in phases.items())
        listing = " ".join(f"{k}={v}" for k, v in endpoints.items())
        log.event("ready", f"{role} ready in {ms(log.elapsed())} ({timing}): {listing}; advertises {resources}",
                  endpoints=endpoints, resources=resources)
        exposure.log_report(log, exposure.measure(sup.descendants(), {p.name: p.port for p in plan.ports}, s))
        while True:
            sup.sleep(0.25)
    except StopRequested as stop:
        log.event("stop", f"{stop} received, stopping the {role} (grace {s.grace_period:g} s)")
        if role == "worker":
            drain.drain(sup, s, log, str(stop))  # Serve leaves the node first, so the stop fails no request
        killed = sup.stop()
        _report_killed(log, killed)
        log.event("stop", f"{role} stopped")
        return 0
    except (ChildExited, HeadLost) as ended:
        # A drained node is one the head no longer holds ALIVE, so the head watch may say so before Ray's
        # own exit is seen: either way, a drain is what was asked for (the autoscaler's scale-down or `ray
        # drain-node`), not a crash.
        drained = drain.by_cluster(sup, s, started_wall, ray_dir) if role == "worker" and sup.node_ip else None
        sup.grace = min(sup.grace, FAILURE_GRACE)
        if drained:
            _report_killed(log, sup.stop())
            log.event("stop", f"{drained}; the worker stopped, exit 0")
            return 0
        if isinstance(ended, HeadLost):
            if sup.proc is not None:
                sup.stop()  # a lost head is news enough: no log tails
            raise
        died = ended
        said = sup.ray_said("exited unexpectedly")
        detail = "; ".join(l.split("--", 1)[-1].strip() for l in said[1:] if "exit code" in l)
        sup.stop()
        _show_tails(log, ray_dir, started_wall)
        raise BootError(f"Ray died: {died.what}" + (f" ({detail})" if detail else ""),
                        "read the Ray log tails above; the orchestrator should restart this node") from None
    except BootError as exc:
        sup.grace = min(sup.grace, FAILURE_GRACE)
        if sup.proc is not None:
            sup.stop()
            if not isinstance(exc, serve.ServeFailed):  # Serve's logs are shown
                _show_tails(log, ray_dir, started_wall)
        raise
    finally:
        claims.close()
        state.remove(ready_path)
        if node_path:
            state.remove(node_path)
        tls.remove_issued(issued)


# For tests only: SEEDCORE_BOOT_TEST_HOLD=PHASE:SECONDS holds the node that long where PHASE begins (start:
# between the worker's wait and `ray start`; health: after the marker), so that a fault exactly there can be
# staged (tests/e2e/test_worker.py). The hold sleeps like any wait: a signal or a lost head still ends it.
TEST_HOLD = "SEEDCORE_BOOT_TEST_HOLD"


def _tls_preflight(plan, log, child_env):
    """The TLS step, before the head wait and Ray: the files checked (and the certificate issued), then our
    own gRPC calls (gcsprobe) set to speak as Ray's processes will, from the child's environment.
    Returns the node's TLS when this run issued its files (tls.remove_issued removes them at the end), else
    None: the files of a node that still runs under the same name are never this run's to remove."""
    s, role, node = plan.settings, plan.role, plan.tls
    head = parse_head_address(s.head_address)[0] if role == "worker" else None
    if node:
        tls.prepare(node, s, role, log, towards=head)
    gcsprobe.use_tls(child_env, server_name=head)
    return node if node and node.issue else None


def _test_hold(phase, sup, log, env):
    name, _, seconds = (env.get(TEST_HOLD) or "").partition(":")
    if name == phase:
        log.warn(phase, f"holding {seconds} s ({TEST_HOLD}, a test hook)")
        sup.sleep(float(seconds))


def _start_serve(deployer, plan, log):
    log.event("serve", f"deploying {len(plan.serve['applications'])} Serve application(s)")
    deployer.put_in_background()
    return time.monotonic()


def _report_killed(log, killed):
    if killed:
        log.warn("stop", f"killed after the grace period: {', '.join(sorted(set(killed)))}")


def _show_tails(log, ray_dir, since):
    for path, lines in raylogs.tails(ray_dir, since=since):
        log.block(path, lines)


def _prune(settings, ray_dir, log):
    pruned = hostcheck.prune_sessions(ray_dir, settings.keep_sessions)
    if pruned:
        log.event("host", pruned.message)


def _check_worker_temp_dir(settings, ray_dir, log):
    """The temp dir checks a head runs before anything else, on the directory the worker's Ray will really
    use, known now that the head has answered (raytemp.py)."""
    level, line = raytemp.worker_line(settings, ray_dir)
    log.event("host", line, level=level)
    state.check_dirs([("Ray's temp dir (the head's)", ray_dir)], fix=raytemp.WORKER_FIX)
    log.event("host", hostcheck.check_free(ray_dir, fix=raytemp.WORKER_FIX).message)
    _prune(settings, ray_dir, log)


def dashboard_url(s):
    return f"http://{host_port(health.local_host(s.dashboard_host), s.dashboard_port)}"


def endpoints_of(s, role, node_ip):
    ip = node_ip or s.node_ip_address or "127.0.0.1"
    out = {}
    if role == "head":
        dash = ip if s.dashboard_host in ("0.0.0.0", "::") else s.dashboard_host
        out["gcs"] = host_port(ip, s.gcs_port)
        out["dashboard"] = f"http://{host_port(dash, s.dashboard_port)}"
        out["client"] = f"ray://{host_port(ip, s.client_port)}"
    out["metrics"] = f"http://{host_port(ip, s.metrics_export_port)}/metrics"
    if role == "head" and not s.disable_metrics_server:
        out["dashboard_metrics"] = f"http://{host_port(ip, s.dashboard_metrics_port)}/metrics"
    return out
