"""Every setting, once: its type, default, help text, the environment names that set it, the roles it applies
to and what it becomes in Ray. `--help`, `config show`, the YAML validator, the environment reader and
docs/configuration.md all read this one table (resolving a node's settings from it is settings.py)."""

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Optional, Tuple

ENV_PREFIX = "SEEDCORE_BOOT_"
CONFIG_ENV = "SEEDCORE_BOOT_CONFIG"


OURS = "ours (not passed to Ray)"


def _f(default, kind, help, env=(), roles=("head", "worker"), ray=None):
    """A field with its metadata. ray: what the setting becomes in Ray, for docs/configuration.md; each
    `ray start --flag` and variable it names in backticks is checked against raycmd and rayenv by
    tests/unit/config/test_settings_ray.py; OURS when seedcore-boot alone reads it."""
    return field(default=default, metadata={"kind": kind, "help": help, "env": tuple(env), "roles": roles,
                                            "ray": ray})


@dataclass(frozen=True)
class Settings:
    # Ports Ray binds. Every one is pinned: a random port is how two nodes on one host collide.
    gcs_port: int = _f(6379, "port", "GCS server port (ray start --port)", roles=("head",), ray="`ray start --port`")
    dashboard_host: str = _f("127.0.0.1", "host", "interface the dashboard binds; Ray has no auth, so "
                             "0.0.0.0 exposes remote code execution to anyone who can reach it",
                             roles=("head",), ray="`ray start --dashboard-host`")
    dashboard_port: int = _f(8265, "port", "dashboard HTTP port (also the Serve REST API)", roles=("head",),
                             ray="`ray start --dashboard-port`")
    dashboard_grpc_port: int = _f(6384, "port", "dashboard head gRPC port", roles=("head",),
                                  ray="`ray start --dashboard-grpc-port`")
    client_port: int = _f(10001, "port", "Ray client server port (ray://)", roles=("head",),
                          ray="`ray start --ray-client-server-port`")
    metrics_export_port: int = _f(8080, "port", "Prometheus metrics exported by the node's agent",
                                  env=("RAY_METRICS_EXPORT_PORT",), ray="`ray start --metrics-export-port`")
    dashboard_metrics_port: int = _f(44227, "port", "the dashboard's own Prometheus server "
                                     "(Ray reads it from DASHBOARD_METRIC_PORT)",
                                     env=("RAY_DASHBOARD_METRICS_PORT", "DASHBOARD_METRIC_PORT"),
                                     roles=("head",), ray="env `DASHBOARD_METRIC_PORT`")
    autoscaler_metrics_port: int = _f(44217, "port", "the autoscaler's Prometheus server "
                                      "(Ray reads it from AUTOSCALER_METRIC_PORT)",
                                      env=("AUTOSCALER_METRIC_PORT",), roles=("head",),
                                      ray="env `AUTOSCALER_METRIC_PORT`")
    disable_metrics_server: bool = _f(False, "bool", "Ray 2.20 cannot turn the dashboard and autoscaler "
                                      "metrics servers off; when set they are moved to free ports "
                                      "instead and not advertised",
                                      env=("RAY_DISABLE_METRICS_SERVER",), roles=("head",),
                                      ray="Ray has no switch: env `DASHBOARD_METRIC_PORT` and "
                                          "`AUTOSCALER_METRIC_PORT` name free ports")
    dashboard_agent_http_port: int = _f(52365, "port", "dashboard agent HTTP port",
                                        ray="`ray start --dashboard-agent-listen-port`")
    dashboard_agent_grpc_port: int = _f(6383, "port", "dashboard agent gRPC port",
                                        ray="`ray start --dashboard-agent-grpc-port`")
    node_manager_port: int = _f(6380, "port", "raylet node manager port", ray="`ray start --node-manager-port`")
    object_manager_port: int = _f(6381, "port", "object manager port", ray="`ray start --object-manager-port`")
    runtime_env_agent_port: int = _f(6382, "port", "runtime env agent port",
                                     ray="`ray start --runtime-env-agent-port`")
    min_worker_port: int = _f(10002, "port", "lowest port of the worker range", ray="`ray start --min-worker-port`")
    max_worker_port: int = _f(19999, "port", "highest port of the worker range", ray="`ray start --max-worker-port`")

    # The node.
    node_ip_address: Optional[str] = _f(None, "ip", "address other nodes reach this one at "
                                        "(default: Ray's detection)",
                                        ray="`ray start --node-ip-address` (unset: not passed)")
    num_cpus: Optional[int] = _f(None, "count", "CPUs to advertise (default: Ray's detection, corrected to what the "
                                 "cgroup allows where Ray 2.20 counts otherwise)",
                                 ray="`ray start --num-cpus` (unset: what the cgroup allows, passed where Ray "
                                     "would count otherwise)")
    num_gpus: Optional[int] = _f(None, "count", "GPUs to advertise (default: Ray's detection)",
                                 ray="`ray start --num-gpus` (unset: not passed)")
    memory: Optional[int] = _f(None, "bytes", "memory to advertise to Ray's scheduler, bytes or with a unit "
                               "(ray start --memory; default: Ray's, the available memory minus the object "
                               "store)", ray="`ray start --memory` (unset: not passed)")
    resources: Optional[str] = _f(None, "resources", "custom resources to advertise, a JSON mapping such as "
                                  '{"accel": 1} (ray start --resources)',
                                  ray="`ray start --resources` (unset: not passed)")
    object_store_memory: Optional[int] = _f(None, "bytes", "object store size: bytes, or with a unit as in "
                                            "Docker's shm_size (2gb = 2 GiB); must fit /dev/shm (default: Ray's "
                                            "30% of available memory, made smaller when /dev/shm cannot hold it)",
                                            ray="`ray start --object-store-memory` (unset: a size that fits "
                                                "/dev/shm, passed where Ray's would not fit)")
    temp_dir: str = _f("/tmp/ray", "abspath", "Ray's temp dir (a worker's Ray uses its head's); our pid and "
                       "ready files live in <temp_dir>/seedcore-boot/",
                       ray="`ray start --temp-dir` (a head's only: Ray 2.20 ignores it on a worker)")
    keep_sessions: int = _f(5, "count", "old session_* dirs kept in the temp dir (the live ones are never "
                            "removed); older ones are removed before Ray starts", ray=OURS)
    ray_args: Tuple[str, ...] = _f((), "args", "extra `ray start` arguments (shell-quoted string in env/YAML)",
                                   ray="appended to the `ray start` arguments, after ours")

    monitor: bool = _f(True, "bool", "run Ray's autoscaler monitor on the head; false (ray start --no-monitor) "
                       "where another process runs it, as KubeRay's autoscaler sidecar does", roles=("head",),
                       ray="`ray start --no-monitor` when false")

    # Supervision.
    ready_timeout: float = _f(90.0, "seconds", "give up when the node is not healthy this long after start", ray=OURS)
    grace_period: float = _f(8.0, "seconds", "on stop, SIGKILL what is still running after this long "
                             "(keep it under Docker's 10 s)", ray=OURS)
    ready_file: Optional[str] = _f(None, "abspath", "written when the node is ready, removed on exit "
                                   "(default: <temp_dir>/seedcore-boot/<role>.ready)", ray=OURS)
    log_format: str = _f("text", "choice:text,json", "text, or json for log shippers",
                         ray="ours (Ray's own output is passed on as it is)")

    # Worker.
    head_address: Optional[str] = _f(None, "str", "HOST:PORT of the head's GCS (worker)",
                                     env=("SEEDCORE_HEAD_ADDRESS", "RAY_ADDRESS"), roles=("worker",),
                                     ray="`ray start --address`")
    wait_timeout: float = _f(300.0, "seconds", "how long a worker waits for its head; 0 waits forever",
                             roles=("worker",), ray=OURS)
    head_lost_timeout: Optional[int] = _f(None, "count", "seconds a worker waits for a head it cannot reach, "
                                          "then exits 1 (a head that answers but is another cluster ends it "
                                          "at once). Default: as long as the head takes to declare the worker "
                                          "dead, from Ray's health-check settings (65 s with Ray's defaults), "
                                          "so a network blip costs no worker",
                                          env=("RAY_gcs_rpc_server_reconnect_timeout_s",), roles=("worker",),
                                          ray="env `RAY_gcs_rpc_server_reconnect_timeout_s` (unset: our wait "
                                              "+ 10 s)")
    drain_timeout: float = _f(45.0, "seconds", "on SIGTERM, the longest a worker waits for Serve to move its "
                              "replicas (and proxy) to other nodes before Ray stops; 0 stops at once. Give the "
                              "orchestrator drain_timeout + grace_period + 5 s (stop_grace_period, "
                              "terminationGracePeriodSeconds)", roles=("worker",), ray=OURS)

    # GCS fault tolerance (head): see ray/redisft.py.
    redis_address: Optional[str] = _f(None, "str", "external Redis for GCS fault tolerance: HOST:PORT, redis:// "
                                      "or rediss:// (TLS); unset, a head restart loses the cluster",
                                      env=("RAY_REDIS_ADDRESS",), roles=("head",),
                                      ray="env `RAY_REDIS_ADDRESS`, with `RAY_external_storage_namespace`")
    redis_password: Optional[str] = _f(None, "secret", "Redis password (never shown; Ray 2.20 puts it on "
                                       "gcs_server's command line)", env=("REDIS_PASSWORD",), roles=("head",),
                                       ray="`ray start --redis-password`, with redis_address only")
    redis_password_file: Optional[str] = _f(None, "abspath", "file holding the Redis password (a Docker or "
                                            "Kubernetes secret)", roles=("head",),
                                            ray="`ray start --redis-password` (the file's content), with "
                                                "redis_address only")
    storage_namespace: Optional[str] = _f(None, "str", "the cluster's name in Redis, the same across restarts "
                                          "of its head (default: seedcore-<hostname>-<gcs_port>)",
                                          env=("RAY_external_storage_namespace",), roles=("head",),
                                          ray="env `RAY_external_storage_namespace`, with redis_address only")
    redis_fresh: bool = _f(False, "bool", "delete this namespace's cluster state from Redis before the start "
                           "(a new cluster; other namespaces untouched)", roles=("head",), ray=OURS)

    # Mutual TLS across the cluster from one CA: see tls/nodetls.py and docs/security.md. Ray's own variables set them too.
    tls: bool = _f(False, "bool", "mutual TLS on every gRPC port of the cluster (Ray's RAY_USE_TLS): every node, "
                   "and every driver or ray:// client, needs a certificate from the cluster's CA",
                   env=("RAY_USE_TLS",),
                   ray="env `RAY_USE_TLS`=1 and `RAY_TLS_SERVER_CERT`, `RAY_TLS_SERVER_KEY`, `RAY_TLS_CA_CERT`")
    tls_ca_cert: Optional[str] = _f(None, "abspath", "the cluster CA's certificate (ca.crt of `seedcore-boot tls "
                                    "init`); needed on every node", env=("RAY_TLS_CA_CERT",),
                                    ray="env `RAY_TLS_CA_CERT`, with tls only")
    tls_ca_key: Optional[str] = _f(None, "abspath", "the CA's private key (a Docker or Kubernetes secret): the node "
                                   "signs its own certificate with it at every start; never shown or passed on",
                                   ray="ours (never passed to Ray)")
    tls_cert: Optional[str] = _f(None, "abspath", "this node's certificate instead of an issued one; it must name "
                                 "127.0.0.1, localhost and the node's address", env=("RAY_TLS_SERVER_CERT",),
                                 ray="env `RAY_TLS_SERVER_CERT`, with tls only (unset: the issued certificate)")
    tls_key: Optional[str] = _f(None, "abspath", "the private key of tls_cert", env=("RAY_TLS_SERVER_KEY",),
                                ray="env `RAY_TLS_SERVER_KEY`, with tls only (unset: the issued key)")
    tls_dns_names: Optional[str] = _f(None, "str", "more names for the issued certificate, comma-separated: every "
                                      "name workers and clients dial this node by (the head's Service or DNS "
                                      "name); the host name and addresses are always in",
                                      ray="ours (names in the issued certificate)")
    tls_expiry_margin_days: int = _f(7, "count", "refuse a certificate (the CA's or the node's) that expires "
                                     "within this many days", ray=OURS)

    # Serve (head).
    serve: bool = _f(True, "bool", "deploy the Serve application when the head is up", roles=("head",),
                     ray="ours (the head deploys it through the dashboard's REST API)")
    serve_config: Optional[object] = _f(None, "serve_config", "Serve config file in Ray's own schema, "
                                        "or the config itself inline in the YAML settings",
                                        roles=("head",), ray="ours (deployed through the dashboard's REST API)")
    serve_app: Optional[str] = _f(None, "str", "module:attr of a single Serve app (shorthand)",
                                  roles=("head",), ray="ours (deployed through the dashboard's REST API)")
    serve_optional: bool = _f(False, "bool", "keep the head running when Serve fails", roles=("head",), ray=OURS)
    serve_drain: bool = _f(True, "bool", "Serve moves replicas off draining nodes (a stopping worker): patches "
                           "Ray 2.20's Serve controller, in the head's own Ray workers only, to read them from "
                           "the GCS (serve/servedrain.py); false keeps Ray's behaviour", roles=("head",),
                           ray="env `__RAY_WORKER_PROCESS_SETUP_HOOK_ENV_VAR` (Ray's worker setup hook), when "
                               "Ray runs from seedcore-boot's own Python")
    serve_http_host: Optional[str] = _f(None, "host", "Serve proxy interface (default: 0.0.0.0 in a "
                                        "container, 127.0.0.1 otherwise)", roles=("head",),
                                        ray="Serve config `http_options.host`")
    serve_http_port: int = _f(8000, "port", "Serve proxy HTTP port", roles=("head",),
                              ray="Serve config `http_options.port`")
    serve_health_route: Optional[str] = _f(None, "str", "path under each app's route_prefix that must answer "
                                           "200 (default: /health for the sample app, the proxy's /-/healthz "
                                           "for others)", roles=("head",), ray=OURS)

    def state_dir(self):
        return os.path.join(self.temp_dir, "seedcore-boot")

    def ready_path(self, role):
        return self.ready_file or os.path.join(self.state_dir(), f"{role}.ready")


FIELDS = {f.name: f for f in dataclasses.fields(Settings)}
DEFAULTS = Settings()


def env_names(name):
    """Every environment variable that sets `name`, ours first."""
    return (ENV_PREFIX + name.upper(),) + FIELDS[name].metadata["env"]


def how_to_set(name):
    """`name (--flag or $ENV)`, for hints that tell a user where to change a setting."""
    return f"{name} (--{name.replace('_', '-')} or ${env_names(name)[-1] if FIELDS[name].metadata['env'] else env_names(name)[0]})"


# The `ray start` options that carry a setting of ours: option (without --) -> setting. KubeRay's
# rayStartParams use the same names, so kuberay.py reads its generated command with this table, and
# ray/raycmd.py refuses them among the extra arguments.
SETTING_OF_OPTION = {
    "port": "gcs_port", "gcs-server-port": "gcs_port",
    "dashboard-host": "dashboard_host", "dashboard-port": "dashboard_port",
    "dashboard-grpc-port": "dashboard_grpc_port", "ray-client-server-port": "client_port",
    "dashboard-agent-listen-port": "dashboard_agent_http_port", "dashboard-agent-grpc-port": "dashboard_agent_grpc_port",
    "metrics-export-port": "metrics_export_port", "node-manager-port": "node_manager_port",
    "object-manager-port": "object_manager_port", "runtime-env-agent-port": "runtime_env_agent_port",
    "min-worker-port": "min_worker_port", "max-worker-port": "max_worker_port",
    "num-cpus": "num_cpus", "num-gpus": "num_gpus", "memory": "memory", "object-store-memory": "object_store_memory",
    "resources": "resources", "node-ip-address": "node_ip_address", "address": "head_address",
    "redis-password": "redis_password", "temp-dir": "temp_dir",
}
