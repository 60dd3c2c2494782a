"""Each port of a node, once: what listens there, whether it speaks gRPC (which mutual TLS can protect), which
machines must reach it on a head and on a worker, and what anyone who reaches it can do. The firewall list
(firewall.py) and the exposure report (exposure.py) both read this one table.

Ray 2.20 has no authentication. Who calls whom, read in Ray 2.20's source: the GCS and every raylet and worker
call each other's GCS, node manager, object manager and worker ports; each node's dashboard agent reports
events to the dashboard's gRPC port (dashboard/modules/event/event_agent.py); the dashboard calls every node's
agent (jobs over HTTP, job_head.py; logs over gRPC, state_manager.py) and runtime env agent
(state_manager.py); Prometheus scrapes the metrics ports. Measured on a default head in a namespace with a
routable address: GCS, client server, raylet, object manager, agent gRPC and HTTP, runtime-env agent, the
metrics ports and the core workers' ports listen on all interfaces; the dashboard stays on 127.0.0.1 unless
told otherwise; Serve's proxy binds where its http_options say.
"""

from typing import NamedTuple, Optional

EVERY = "every machine of the cluster"
HEAD = "the head's machine"
PROMETHEUS = "Prometheus's machine"
USERS = "your users, if you use it"
LOCAL = None  # called from this machine only

RUNS_CODE = "run code on the cluster"


class Port(NamedTuple):
    component: str
    grpc: Optional[bool]  # None: not known
    allows: str  # what anyone who reaches it can do (without TLS)
    head: Optional[str]  # which machines must reach it on a head (LOCAL: none but this one)
    worker: Optional[str]  # and on a worker


# Every port a node's plan can hold (host/ports.py), by its name in the plan.
PORTS = {
    "gcs": Port("GCS", True, f"{RUNS_CODE} (tasks, actors, jobs) and read or change its state", EVERY, None),
    "client": Port("Ray client server (ray://)", True, f"{RUNS_CODE} as a driver", USERS, None),
    "node_manager": Port("raylet node manager", True, f"lease this node's workers: {RUNS_CODE}", EVERY, EVERY),
    "object_manager": Port("object manager", True, "read and write this node's objects", EVERY, EVERY),
    "dashboard_agent_grpc": Port("dashboard agent gRPC", True, "read this node's logs, profile its processes",
                                 LOCAL, HEAD),
    "dashboard_grpc": Port("dashboard gRPC", True, "report events to the dashboard", EVERY, None),
    "dashboard": Port("dashboard HTTP (Jobs and Serve REST APIs)", False,
                      f"submit jobs, deploy Serve apps: {RUNS_CODE}", USERS, None),
    "dashboard_agent_http": Port("dashboard agent HTTP (job agent)", False, f"submit jobs: {RUNS_CODE}; read logs",
                                 LOCAL, HEAD),
    "runtime_env_agent": Port("runtime-env agent HTTP", False, f"make this node install packages: {RUNS_CODE}",
                              LOCAL, HEAD),
    "metrics_export": Port("metrics (Prometheus)", False, "read the node's metrics", PROMETHEUS, PROMETHEUS),
    "dashboard_metrics": Port("dashboard metrics (Prometheus)", False, "read the dashboard's metrics",
                              PROMETHEUS, None),
    "autoscaler_metrics": Port("autoscaler metrics (Prometheus)", False, "read the autoscaler's metrics",
                               PROMETHEUS, None),
    "serve_http": Port("Serve HTTP proxy", False, "call the Serve applications", USERS, None),
    "serve_grpc": Port("Serve gRPC proxy", False, "call the Serve applications", USERS, None),
}
# The ports no plan names: the worker port range (min_worker_port..max_worker_port, one port per Ray worker
# process), and a Serve proxy Ray starts on a port of its own choosing.
CORE_WORKER = Port("core worker gRPC", True, f"push tasks into a Ray worker process: {RUNS_CODE}", EVERY, EVERY)
SERVE_PROXY = Port("Serve proxy (HTTP or gRPC)", False, "call the Serve applications", None, None)
KINDS = {**PORTS, "core_worker": CORE_WORKER, "serve_proxy": SERVE_PROXY}  # every listener a node is known to open
UNKNOWN = Port("a listener Ray 2.20 is not known to open", None, "unknown", None, None)
