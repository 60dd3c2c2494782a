"""What this node exposes to the network (#19): every listener of the node's own processes bound beyond
loopback, from their real sockets (not from the plan), with what an anonymous peer who reaches it can do
and whether mutual TLS protects it. Logged at ready; `status` measures it again.

Ray 2.20 has no authentication: a gRPC port is protected only by TLS (RAY_USE_TLS in that process's own
environment, read here), an HTTP port never is. What each port is and allows: reach.py.
"""

import dataclasses
import ipaddress
from typing import Optional, Tuple

import psutil

from ..ray.components import component_name
from .reach import KINDS, RUNS_CODE, UNKNOWN


@dataclasses.dataclass(frozen=True)
class Listener:
    port: int
    addresses: Tuple[str, ...]  # what it is bound to: 0.0.0.0, ::, or an address
    name: str  # the planned port's name, or core_worker / serve_proxy / unknown
    component: str
    process: str
    pid: int
    tls: Optional[bool]  # None: not known (an unknown listener)
    anonymous: str  # what an anonymous peer on the network can do there

    @property
    def open_to_code(self):
        return not self.tls and RUNS_CODE in self.anonymous

    def verdict(self):
        if self.tls:
            return "mutual TLS: a peer without a certificate from the cluster's CA is refused"
        return f"{'no TLS' if self.tls is False else 'TLS unknown'}: anyone who reaches it can {self.anonymous}"

    def where(self):
        """*:PORT on every interface, else ADDRESS:PORT ([ADDRESS]:PORT for IPv6)."""
        shown = ["*" if a in ("0.0.0.0", "::") else f"[{a}]" if ":" in a else a for a in self.addresses]
        return "/".join(dict.fromkeys(shown))

    def line(self):
        return f"{self.where()}:{self.port} {self.component} ({self.process}, pid {self.pid}): {self.verdict()}"

    def as_dict(self):
        return dataclasses.asdict(self)


def _beyond_loopback(ip):
    try:
        return not ipaddress.ip_address(ip.split("%")[0]).is_loopback
    except ValueError:
        return True


def _title(proc):
    """A process's Ray component name, or its title (ray::IDLE, ray::ServeReplica:...) or name."""
    name = component_name(proc)
    if name:
        return name
    try:
        argv = proc.cmdline()
        return argv[0].split(" ", 1)[0] if argv and argv[0].startswith("ray::") else proc.name()
    except psutil.Error:
        return "?"


def _uses_tls(proc, fallback):
    try:
        return proc.environ().get("RAY_USE_TLS", "0").lower() in ("1", "true")  # what Ray itself tests
    except psutil.Error:
        return fallback


def tree(pid):
    """The processes below a node's supervisor (for `status`, which runs beside it)."""
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def _listening(procs):
    """(process, connection) of every listening TCP socket of procs. One scan of the machine's sockets, kept
    to procs: measured on a head's 14 processes, 10 ms against 90 ms and more for one scan per process (each
    parses the socket tables again). Per process only where the machine's scan is not allowed."""
    by_pid = {p.pid: p for p in procs}
    try:
        return [(by_pid[c.pid], c) for c in psutil.net_connections(kind="tcp")
                if c.pid in by_pid and c.status == psutil.CONN_LISTEN]
    except (psutil.AccessDenied, OSError):
        pass
    found = []
    for proc in procs:
        try:
            conns = getattr(proc, "net_connections", None) or proc.connections  # psutil < 6 has only the latter
            found += [(proc, c) for c in conns(kind="tcp") if c.status == psutil.CONN_LISTEN]
        except psutil.Error:
            continue
    return found


def measure(procs, planned, settings):
    """[Listener] of `procs` (the node's processes) bound beyond loopback, by port. planned: {name: port} of
    the node's port plan; the worker range and tls come from settings (for a process whose environment
    cannot be read)."""
    by_port = {}
    for proc, c in _listening(procs):
        if c.laddr and _beyond_loopback(c.laddr.ip):
            by_port.setdefault(c.laddr.port, (proc, set()))[1].add(c.laddr.ip)
    names = {port: name for name, port in planned.items()}
    found = []
    for port in sorted(by_port):
        proc, addresses = by_port[port]
        title = _title(proc)
        name = names.get(port)
        if name is None:
            in_range = settings.min_worker_port <= port <= settings.max_worker_port
            name = "core_worker" if in_range else "serve_proxy" if title.startswith("ray::ProxyActor") else "unknown"
        component, grpc, anonymous = KINDS.get(name, UNKNOWN)[:3]
        tls = _uses_tls(proc, settings.tls) if grpc else grpc
        found.append(Listener(port, tuple(sorted(addresses)), name, component, title, proc.pid,
                              tls, "nothing" if tls else anonymous))
    return found


def lines(listeners):
    """(level, text) for the log: a summary, then one line per listener; the core workers' ports (one per Ray
    worker process, they come and go) share one line."""
    if not listeners:
        return [("info", "no listener of this node is bound beyond loopback")]
    exposed = [l for l in listeners if l.open_to_code]
    out = [("warning" if exposed else "info",
            f"{len(listeners)} listener(s) of this node are bound beyond loopback; "
            + (f"{len(exposed)} let anyone who reaches them run code (no TLS): "
               f"{', '.join(dict.fromkeys(str(l.port) if l.name != 'core_worker' else 'core workers' for l in exposed))}"
               " (docs/security.md)" if exposed else "none lets an anonymous peer run code"))]
    workers = [l for l in listeners if l.name == "core_worker"]
    for l in listeners:
        if l.name != "core_worker":
            out.append(("warning" if l.open_to_code else "info", l.line()))
    if workers:
        first = workers[0]
        ports = ", ".join(str(l.port) for l in workers)
        text = first.verdict() if len({l.tls for l in workers}) == 1 else "TLS differs from process to process"
        out.append(("warning" if first.open_to_code else "info",
                    f"{first.where()}:{ports} {first.component} ({len(workers)} Ray worker "
                    f"process(es) now): {text}"))
    return out


def log_report(log, listeners):
    for level, text in lines(listeners):
        log.event("exposure", text, level=level)
