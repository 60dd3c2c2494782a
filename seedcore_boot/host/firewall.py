"""The ports other machines must reach on a node, and what reaching each allows: a firewall list made from
the node's port plan (`seedcore-boot check-ports --role ROLE --firewall`), so it can never miss a port.

Ray 2.20 has no authentication: whoever reaches these ports acts on the cluster, so each row names the only
machines that need it. Who calls whom, read in Ray 2.20's source: the GCS and every raylet and worker call
each other's GCS, node manager, object manager and worker ports; each node's dashboard agent reports events
to the dashboard's gRPC port (dashboard/modules/event/event_agent.py); the dashboard calls every node's agent
(jobs over HTTP, job_head.py; logs over gRPC, state_manager.py) and runtime env agent (state_manager.py);
Prometheus scrapes the metrics ports.
"""

from .. import RAY_VERSION

EVERY = "every machine of the cluster"
HEAD = "the head's machine"
PROMETHEUS = "Prometheus's machine"
USERS = "your users, if you use it"
LOCAL = None  # called from this machine only

# name -> (who reaches it on a head, who reaches it on a worker, what reaching it allows)
REACHED_BY = {
    "gcs": (EVERY, None, "the cluster's control plane: start tasks and actors, i.e. run code on every node"),
    "dashboard": (USERS, None, "the dashboard and its job and Serve APIs: run code on the cluster"),
    "dashboard_grpc": (EVERY, None, "report events into the dashboard"),
    "client": (USERS, None, "Ray Client (ray://): run code on the cluster"),
    "metrics_export": (PROMETHEUS, PROMETHEUS, "read this node's metrics"),
    "dashboard_metrics": (PROMETHEUS, None, "read the dashboard's metrics"),
    "autoscaler_metrics": (PROMETHEUS, None, "read the autoscaler's metrics"),
    "dashboard_agent_http": (LOCAL, HEAD, "submit jobs to this node's agent: run code here"),
    "dashboard_agent_grpc": (LOCAL, HEAD, "read this node's logs and state"),
    "node_manager": (EVERY, EVERY, "the raylet: lease workers, i.e. run tasks here"),
    "object_manager": (EVERY, EVERY, "read and write this node's objects"),
    "runtime_env_agent": (LOCAL, HEAD, "set up runtime environments here (installs packages, runs code)"),
    "serve_http": (USERS, None, "your Serve applications"),
    "serve_grpc": (USERS, None, "your Serve applications over gRPC"),
}
WORKER_RANGE = (EVERY, EVERY, "Ray's worker processes: call their tasks and actors directly, i.e. run code")


def rows(planned, settings, role):
    """[(ports as `N/tcp` or `A-B/tcp`, who, name: what it allows)] to open; then [(name, why not)]."""
    side = 0 if role == "head" else 1
    open_, closed = [], []
    for p in planned:
        who, allows = REACHED_BY[p.name][side], REACHED_BY[p.name][2]
        if _loopback(p.host):
            closed.append((f"{p.name} {p.host}:{p.port}", "listens on loopback"))
        elif who is LOCAL:
            closed.append((f"{p.name} {p.port}", "called from this machine only"))
        else:
            open_.append((f"{p.port}/tcp", who, f"{p.name}: {allows}"))
    who, allows = WORKER_RANGE[side], WORKER_RANGE[2]
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
