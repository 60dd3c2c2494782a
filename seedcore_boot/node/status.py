"""`seedcore-boot status`: is this machine's node alive, is it ready. For people, Docker HEALTHCHECK and
Kubernetes exec probes: plain HTTP and TCP, never an import of ray (a probe runs every few seconds).

- live: the supervisor runs, and the node's core answers on TCP (the GCS on a head, the raylet on any
  node). A failing liveness probe restarts the container, so it asks no more than that: a slow Serve
  deploy or a dashboard hiccup must not kill a working node.
- ready (the default): every endpoint answers, the ready file was written by this node's supervisor, and
  on a head that deploys Serve, every application is RUNNING and Serve's proxies are HEALTHY; with
  --no-serve, not Serve: the supervisor writes the ready file as soon as Ray is healthy, before its Serve
  deploy, so a head's Kubernetes readinessProbe never waits for an app that needs workers (which cannot
  join a head whose Service has no endpoints while it is not Ready).
Exit 0 when the asked state holds, 1 when it does not (2 for usage errors, as everywhere).
"""

import dataclasses
from typing import List, NamedTuple

from ..host import exposure, ports, state
from ..ray import health
from ..serve import deploy as serve
from . import flow as node


class Row(NamedTuple):
    name: str
    target: str
    ok: bool
    detail: str


@dataclasses.dataclass
class Report:
    mode: str
    role: str
    supervisor_pid: object
    rows: List[Row]
    exposure: List["exposure.Listener"] = dataclasses.field(default_factory=list)  # measured now (readiness only)

    @property
    def ok(self):
        return bool(self.rows) and all(r.ok for r in self.rows)

    def as_dict(self):
        return {"mode": self.mode, "role": self.role, "healthy": self.ok, "supervisor_pid": self.supervisor_pid,
                "probes": [r._asdict() for r in self.rows], "exposure": [l.as_dict() for l in self.exposure]}

    def lines(self):
        who = f"pid {self.supervisor_pid}" if self.supervisor_pid else "no seedcore-boot node found"
        verdict = {"live": ("alive", "NOT alive"), "ready": ("healthy", "NOT healthy")}[self.mode]
        out = [f"{self.role} ({who}): {verdict[0] if self.ok else verdict[1]}"]
        out += [f"  {'ok  ' if r.ok else 'FAIL'} {r.name:<18} {r.target}  {r.detail}" for r in self.rows]
        if self.exposure:
            out += [f"  exposure: {text}" for _, text in exposure.lines(self.exposure)]
        return out


def with_recorded_ports(s, record):
    """The settings as the running node used them (its node file), whatever this shell's settings say."""
    changes = {ports.setting_of(n): port for n, port in record.get("ports", {}).items() if ports.setting_of(n)}
    if record.get("dashboard_host"):
        changes["dashboard_host"] = record["dashboard_host"]
    return dataclasses.replace(s, **changes)


def check(settings, mode="ready"):
    nodes = state.running_nodes(settings)
    if not nodes:
        # No supervisor: nothing is alive; for readiness, say what the settings' ports answer anyway.
        rows = [Row("supervisor", settings.state_dir(), False, "no running seedcore-boot node under this temp dir")]
        if mode == "ready":
            rows += [Row(*r) for r in health.report(health.node_probes(settings, "head"))]
        return Report(mode, "head", None, rows)
    _, record = nodes[0]
    s, role, pid = with_recorded_ports(settings, record), record["role"], record["pid"]
    if mode == "live":
        return Report(mode, role, pid, _live(s, role))
    rows = [Row(*r) for r in health.report(health.node_probes(s, role))]
    rows.append(Row(*state.ready_row(s, role, pid)))
    if record.get("serve") and settings.serve:  # `status --no-serve`: Ray's readiness alone (a head's readinessProbe)
        rows += _serve_rows(node.dashboard_url(s))
    return Report(mode, role, pid, rows, exposure.measure(exposure.tree(pid), record.get("ports", {}), s))


def _live(s, role):
    probes = [health.Probe("raylet", f"tcp://{health.LOOPBACK}:{s.node_manager_port}")]
    if role == "head":
        probes.insert(0, health.Probe("gcs", f"tcp://{health.LOOPBACK}:{s.gcs_port}"))
    return [Row("supervisor", "", True, "running")] + [Row(*r) for r in health.report(probes)]


def _serve_rows(url):
    details, err = serve.instance(url)
    if details is None:
        return [Row("serve", url, False, err)]
    apps = serve.mappings(details, "applications")
    rows = [Row(f"serve app {name}", app.get("route_prefix") or "-", app.get("status") == "RUNNING",
                "RUNNING" if app.get("status") == "RUNNING" else f"{app.get('status')}: "
                f"{serve.app_message(app)}")
            for name, app in apps.items()]
    if not apps:
        rows.append(Row("serve", url, False, "no Serve application is deployed"))
    for node_id, proxy in serve.mappings(details, "proxies").items():
        rows.append(Row("serve proxy", f"node {node_id[:12]}", proxy.get("status") == "HEALTHY",
                        proxy.get("status") or "unknown"))
    return rows
