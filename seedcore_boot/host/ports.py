"""The port plan of a node, and the preflight that proves every planned port is free before Ray starts.

Ray 2.20 fails loudly only when the GCS port is taken; for the dashboard, client server, metrics
exporter and agent it prints "Ray runtime started." with the component missing. So we check first.
"""

import dataclasses
import errno
import socket
from dataclasses import dataclass
from typing import List, Optional

from ..config.fields import how_to_set
from ..errors import BootError, usage_error
from . import leftovers

WILDCARD = ""

# (name, setting, roles, how the owning server binds: None = wildcard, else the setting holding the host)
_PLAN = [
    ("gcs", "gcs_port", ("head",), None),
    ("dashboard", "dashboard_port", ("head",), "dashboard_host"),
    ("dashboard_grpc", "dashboard_grpc_port", ("head",), None),
    ("client", "client_port", ("head",), None),
    ("metrics_export", "metrics_export_port", ("head", "worker"), None),
    ("dashboard_metrics", "dashboard_metrics_port", ("head",), None),
    ("autoscaler_metrics", "autoscaler_metrics_port", ("head",), None),
    ("dashboard_agent_http", "dashboard_agent_http_port", ("head", "worker"), None),
    ("dashboard_agent_grpc", "dashboard_agent_grpc_port", ("head", "worker"), None),
    ("node_manager", "node_manager_port", ("head", "worker"), None),
    ("object_manager", "object_manager_port", ("head", "worker"), None),
    ("runtime_env_agent", "runtime_env_agent_port", ("head", "worker"), None),
    ("serve_http", "serve_http_port", ("head",), "serve_http_host"),
]

RAY_PROCESS_NAMES = ("gcs_server", "raylet", "plasma_store")
RAY_CMDLINE_MARKS = ("ray/dashboard/", "ray/_private/", "ray/autoscaler/", "ray.util.client.server",
                     "ray/core/src/", "default_worker.py", "ray::", "seedcore_boot", "seedcore-boot")


@dataclass(frozen=True)
class PlannedPort:
    name: str
    port: int
    host: str  # WILDCARD or an interface address
    setting: str


@dataclass(frozen=True)
class Holder:
    pid: int
    name: str
    cmdline: str

    def is_ray(self):
        return self.name in RAY_PROCESS_NAMES or any(m in self.cmdline for m in RAY_CMDLINE_MARKS)


def setting_of(name):
    """The setting that holds the port called `name` in a plan (as recorded in a node's state file)."""
    return next((setting for n, setting, _, _ in _PLAN if n == name), None)


def plan(settings, role):
    """The fixed ports `role` will bind, in the order Ray starts them."""
    ports = []
    for name, setting, roles, host_setting in _PLAN:
        if role not in roles:
            continue
        if name == "serve_http" and not settings.serve:
            continue
        if name == "autoscaler_metrics" and not settings.monitor:
            continue  # the autoscaler's metrics server belongs to whoever runs the autoscaler
        if host_setting == "serve_http_host":
            host = settings.serve_http_host or WILDCARD
        elif host_setting:
            host = getattr(settings, host_setting)
        else:
            host = WILDCARD
        ports.append(PlannedPort(name, getattr(settings, setting), _bind_host(host), setting))
    return ports


def _bind_host(host):
    return WILDCARD if host in ("0.0.0.0", "::", "") else host


def check_duplicates(ports, settings):
    """Two components on one port, or a fixed port inside the worker range, is a settings error."""
    seen = {}
    for p in ports:
        if p.port in seen:
            other = seen[p.port]
            raise usage_error(f"port {p.port} is planned twice: {other.name} ({other.setting}) and "
                              f"{p.name} ({p.setting})", f"give one of {other.setting}, {p.setting} "
                              "another port")
        seen[p.port] = p
        if settings.min_worker_port <= p.port <= settings.max_worker_port:
            raise usage_error(f"port {p.port} ({p.name}, {p.setting}) lies inside the worker port range "
                              f"{settings.min_worker_port}-{settings.max_worker_port}",
                              f"move {p.setting} or narrow min_worker_port/max_worker_port")


def probe(host, port):
    """None when `port` can be bound the way Ray's servers bind it, else the errno.

    SO_REUSEADDR as Ray's servers set it, so a port in TIME_WAIT after a restart counts as free.
    A wildcard is probed on IPv4 and IPv6, so a listener on either family is found.
    """
    targets = [(socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")] if host == WILDCARD else \
        [(socket.AF_INET6 if ":" in host else socket.AF_INET, host)]
    for family, addr in targets:
        try:
            sock = socket.socket(family, socket.SOCK_STREAM)
        except OSError:
            continue  # no IPv6 on this host: nothing can listen there either
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind((addr, port))
        except OSError as exc:
            if exc.errno == errno.EADDRNOTAVAIL and family == socket.AF_INET6 and host == WILDCARD:
                continue
            return exc.errno
        finally:
            sock.close()
    return None


def holders(ports):
    """{port: [Holder]} for the listening sockets on `ports` that this process can see."""
    import psutil

    wanted = set(ports)
    found = {}
    try:
        conns = psutil.net_connections(kind="inet")
    except (psutil.AccessDenied, OSError):
        return found
    for c in conns:
        if c.status != psutil.CONN_LISTEN or not c.laddr or c.laddr.port not in wanted or c.pid is None:
            continue
        try:
            proc = psutil.Process(c.pid)
            holder = Holder(c.pid, proc.name(), " ".join(proc.cmdline()) or proc.name())
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            holder = Holder(c.pid, "?", "?")
        if holder not in found.setdefault(c.laddr.port, []):
            found[c.laddr.port].append(holder)
    return found


@dataclass(frozen=True)
class PortStatus:
    planned: PlannedPort
    error: Optional[int]  # errno of the failed probe
    holders: tuple

    @property
    def free(self):
        return self.error is None

    def as_dict(self):
        d = dataclasses.asdict(self.planned)
        d.update(free=self.free, error=errno.errorcode.get(self.error) if self.error else None,
                 holders=[dataclasses.asdict(h) for h in self.holders])
        return d


def check(ports) -> List[PortStatus]:
    """Probe every planned port; look up holders only for the busy ones (it costs a /proc scan)."""
    errors = {p: probe(p.host, p.port) for p in ports}
    busy = [p.port for p, e in errors.items() if e is not None]
    who = holders(busy) if busy else {}
    return [PortStatus(p, errors[p], tuple(who.get(p.port, ()))) for p in ports]


def _short(cmdline, limit=120):
    """One line of at most `limit` characters: an argument may hold newlines (`python -c "..."`), and the
    error it goes into is one line."""
    cmdline = " ".join(cmdline.split())
    return cmdline if len(cmdline) <= limit else cmdline[: limit - 3] + "..."


def busy_message(status):
    p = status.planned
    where = f"{p.host}:{p.port}" if p.host else f"port {p.port}"
    if status.error == errno.EADDRNOTAVAIL:
        return BootError(f"{where} ({p.name}) cannot be bound: {p.host} is not an address of this host",
                         f"set {_host_setting(p)} to an address of this host, or 0.0.0.0",
                         exit_code=2)
    if status.error not in (errno.EADDRINUSE, errno.EACCES):
        return BootError(f"{where} ({p.name}) cannot be bound: {errno.errorcode.get(status.error)}",
                         f"set {p.setting} to another port")
    if status.error == errno.EACCES:
        return BootError(f"{where} ({p.name}) needs privileges to bind", f"set {p.setting} to a port >= 1024")
    if not status.holders:
        return BootError(f"{where} ({p.name}) is in use by a process this user cannot see",
                         f"free the port or set {how_to_set(p.setting)} to another port")
    h = status.holders[0]
    desc = f"pid {h.pid} ({h.name}: {_short(h.cmdline)})"
    orphaned = leftovers.orphan_of(h.pid)
    if orphaned:
        return BootError(f"{where} ({p.name}) is in use by {desc}, a process of the seedcore-boot node "
                         f"{orphaned} whose supervisor died",
                         f"stop what is left of it with `seedcore-boot stop`; or set {how_to_set(p.setting)} "
                         "to another port")
    if h.is_ray():
        return BootError(f"{where} ({p.name}) is in use by {desc}, a Ray process left over from an earlier run",
                         f"stop it with `seedcore-boot stop` if seedcore-boot started it, else `kill {h.pid}`; "
                         f"or set {how_to_set(p.setting)} to another port")
    return BootError(f"{where} ({p.name}) is in use by {desc}",
                     f"stop that process (`kill {h.pid}`) or set {how_to_set(p.setting)} to another port")


def _host_setting(p):
    return {"dashboard": "dashboard_host", "serve_http": "serve_http_host"}.get(p.name, "node_ip_address")


def free_port(avoid=()):
    """A port the kernel says is free on every interface and family, outside `avoid`."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("0.0.0.0", 0))
            port = s.getsockname()[1]
        if port not in avoid and probe(WILDCARD, port) is None:
            return port
    raise BootError("found no free port for a moved metrics server", "free some ports and try again")


def move_disabled_metrics(settings, resolved_sources, avoid):
    """With disable_metrics_server, put the servers Ray cannot turn off on ports checked to be free.

    Returns (settings, notes); notes say which configured values were set aside, so none is dropped silently.
    """
    if not settings.disable_metrics_server:
        return settings, []
    notes, changes, taken = [], {}, set(avoid)
    for name in ("dashboard_metrics_port", "autoscaler_metrics_port"):
        port = free_port(avoid=taken)
        taken.add(port)
        changes[name] = port
        was = getattr(settings, name)
        source = resolved_sources.get(name, "default")
        configured = f" (configured {was} from {source} is not used)" if source != "default" else ""
        notes.append(f"metrics server disabled: Ray 2.20 cannot turn it off, so {name} moved to free "
                     f"port {port}{configured}")
    return dataclasses.replace(settings, **changes), notes
