"""A node's plan: everything decided before anything runs, made in one pass through the concerns. Each stage
takes the plan so far and returns it with its own part added, in the order the facts depend on each other:

    settings  notes on settings this node does not use (config)
    host      the address family, the host's checks, which may change settings: the object store (host)
    tls       the node's certificate files, and notes on TLS settings it does not use (tls)
    serve     a head's Serve config and the HTTP binding it makes a setting (serve)
    ports     a disabled metrics server moved, the port plan with Serve's gRPC port (host)
    ray       the `ray start` argv, and the environment added to it with the TLS files and the drain hook (ray)

dry_run_text prints a plan (`--dry-run`); flow.run runs one.
"""

import dataclasses
import json
import os
import shlex
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from ..config.addresses import parse_head_address
from ..config.fields import FIELDS
from ..host import hostcheck, nodeaddr, ports
from ..log import redact
from ..ray import raycmd, raytemp, redisft
from ..serve import config as serve, servedrain
from ..tls import nodetls as tls
from . import rayenv


@dataclass(frozen=True)
class Plan:
    role: str
    settings: object
    ports: List["ports.PlannedPort"] = field(default_factory=list)
    argv: List[str] = field(default_factory=list)
    env_additions: Dict[str, str] = field(default_factory=dict)
    notes: List[str] = field(default_factory=list)
    host: List[hostcheck.Decision] = field(default_factory=list)  # what the host's checks decided
    nofile: Optional[int] = None  # the soft open-files limit to raise ours to before Ray starts
    secrets: List[str] = field(default_factory=list)  # on the argv (the Redis password); never printed
    serve: Optional[dict] = None  # the Serve config to PUT, http_options set to the preflighted binding
    serve_health: Dict[str, str] = field(default_factory=dict)
    tls: Optional["tls.NodeTls"] = None  # the node's TLS files (paths); None with TLS off
    serve_grpc_port: Optional[int] = None  # Serve's gRPC proxy, when the config has one


def make_plan(resolved, role, address=None, ray=("ray",), host_checks=True):
    """The plan of a `role` node from its resolved settings. address: a worker's head as `ray start` gets it;
    ray: the `ray` command (raycmd.find_ray); host_checks: False where only the ports matter (check-ports)."""
    plan = _settings(resolved, role)
    plan = _host(plan, host_checks)
    plan = _tls(plan, resolved)
    plan = _serve(plan, resolved.sources)
    plan = _ports(plan, resolved.sources)
    return _ray(plan, address, ray)


def _settings(resolved, role):
    notes = [f"{name} is set (from {resolved.sources[name]}) but applies only to a {' or '.join(roles)}; it is "
             "ignored here" for name, roles in _role_only(resolved, role) if name not in resolved.injected]
    notes += resolved.platform.notes if resolved.platform else []
    return Plan(role, resolved.settings, notes=notes)


def _role_only(resolved, role):
    for name, f in FIELDS.items():
        if resolved.sources[name] != "default" and role not in f.metadata["roles"]:
            yield name, f.metadata["roles"]


def _host(plan, host_checks):
    s, role = plan.settings, plan.role
    head_host = parse_head_address(s.head_address)[0] if role == "worker" and s.head_address else None
    nodeaddr.ipv4_only(s.node_ip_address, head_host)
    if not host_checks:
        return plan
    s, decisions, nofile = hostcheck.checks(s, role)
    if role == "worker":
        decisions.append(hostcheck.Decision(None, "info", raytemp.plan_line(s)))
    return dataclasses.replace(plan, settings=s, host=decisions, nofile=nofile)


def _tls(plan, resolved):
    return dataclasses.replace(plan, tls=tls.plan(plan.settings, plan.role), notes=plan.notes + tls.notes(resolved))


def _serve(plan, sources):
    planned = serve.plan(plan.settings, sources) if plan.role == "head" else None
    if planned is None:
        return plan
    s = dataclasses.replace(plan.settings, serve_http_host=planned.http_host, serve_http_port=planned.http_port)
    return dataclasses.replace(plan, settings=s, serve=planned.config, serve_health=planned.health,
                               serve_grpc_port=planned.grpc_port)


def _ports(plan, sources):
    s, role = plan.settings, plan.role
    avoid = {p.port for p in ports.plan(s, role)}
    s, moved = ports.move_disabled_metrics(s, sources, avoid)
    planned = ports.plan(s, role)
    if plan.serve_grpc_port:
        planned.append(ports.PlannedPort("serve_grpc", plan.serve_grpc_port, ports.WILDCARD,
                                         "serve_config grpc_options.port"))
    ports.check_duplicates(planned, s)
    return dataclasses.replace(plan, settings=s, ports=planned, notes=plan.notes + moved)


def _ray(plan, address, ray):
    s, role = plan.settings, plan.role
    secret = redisft.password(s) if role == "head" and s.redis_address else ""
    argv = raycmd.head_argv(s, ray, secret) if role == "head" else raycmd.worker_argv(s, address, ray)
    env_additions = rayenv.additions(s, role, raycmd.gateable(argv), os.environ, node_tls=plan.tls)
    return dataclasses.replace(plan, argv=argv, env_additions=env_additions, secrets=[secret] if secret else [])


def dry_run_text(plan):
    lines = [f"# ray start argv ({plan.role})", redact(shlex.join(plan.argv), plan.secrets)]
    if raycmd.gateable(plan.argv):
        lines.append("# (seedcore_boot.ray.raycli is Ray's own `ray` CLI without some of its waits: on a head it "
                     "waits for the GCS port before Ray's first connect, a fixed 1 s otherwise, and starts the "
                     "dashboard beside the raylet, not before it; see raycli.py)")
    lines.append("# environment additions")
    lines += [f"{k}={shlex.quote(v)}" + ("  # unless exported" if k in rayenv.RAY_DEFAULTS else "")
              + ("  # Ray's worker setup hook: Serve moves replicas off draining workers (serve_drain)"
                 if k == servedrain.HOOK_ENV else "")
              for k, v in plan.env_additions.items()]
    lines += [f"# note: {n}" for n in plan.notes]
    lines += [f"# host: {d.message}" for d in plan.host]
    if plan.serve:
        lines += ["# Serve config (PUT /api/serve/applications/)", json.dumps(plan.serve, indent=2)]
    return "\n".join(lines)
