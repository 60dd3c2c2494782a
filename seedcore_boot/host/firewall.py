"""The ports other machines must reach on a node, and what reaching each allows: a firewall list made from
the node's port plan (`seedcore-boot check-ports --role ROLE --firewall`), so it can never miss a port.

Ray 2.20 has no authentication: whoever reaches these ports acts on the cluster, so each row names the only
machines that need it (who calls whom, and what each port allows: reach.py).
"""

from .. import RAY_VERSION
from .reach import CORE_WORKER, EVERY, HEAD, LOCAL, PORTS, PROMETHEUS, USERS


def rows(planned, settings, role):
    """[(ports as `N/tcp` or `A-B/tcp`, who, name: what it allows)] to open; then [(name, why not)]."""
    open_, closed = [], []
    for p in planned:
        who, allows = getattr(PORTS[p.name], role), PORTS[p.name].allows
        if _loopback(p.host):
            closed.append((f"{p.name} {p.host}:{p.port}", "listens on loopback"))
        elif who is LOCAL:
            closed.append((f"{p.name} {p.port}", "called from this machine only"))
        else:
            open_.append((f"{p.port}/tcp", who, f"{p.name}: {allows}"))
    who, allows = getattr(CORE_WORKER, role), CORE_WORKER.allows
    open_.append((f"{settings.min_worker_port}-{settings.max_worker_port}/tcp", who, f"worker ports: {allows}"))
    order = (EVERY, HEAD, PROMETHEUS, USERS)  # grouped by the machines to open them to
    open_.sort(key=lambda row: (order.index(row[1]), int(row[0].split("/")[0].split("-")[0])))
    return open_, closed


def _loopback(host):
    return host == "localhost" or host.startswith("127.") or host == "::1"


def text(planned, settings, role):
    open_, closed = rows(planned, settings, role)
    lines = [f"# The TCP ports other machines reach on a {role} (Ray {RAY_VERSION}, from its port plan). Ray has no "
             "authentication: open each only to the machines named.",
             *(f"{ports:<16} {who:<29} {what}" for ports, who, what in open_)]
    if closed:
        lines += ["# Nothing to open for these:", *(f"#   {name} ({why})" for name, why in closed)]
    return "\n".join(lines)
