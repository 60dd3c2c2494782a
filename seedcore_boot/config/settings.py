"""Settings: one frozen dataclass, resolved from defaults < YAML file < KubeRay's command < environment < flags.

Every field carries its help text and the environment names that set it, so `--help`, `config show`,
the YAML validator and the environment reader all read the same table.
"""

import codecs
import dataclasses
import difflib
import os
from dataclasses import dataclass, field
from typing import Mapping, Optional, Tuple

import yaml

from . import kuberay
from ..errors import usage_error
from .values import MIN_OBJECT_STORE, parse_bytes  # noqa: F401  (imported from here by objectstore and tests)
from .values import parse as parse_value

ENV_PREFIX = "SEEDCORE_BOOT_"
CONFIG_ENV = "SEEDCORE_BOOT_CONFIG"


OURS = "ours (not passed to Ray)"


def _f(default, kind, help, env=(), roles=("head", "worker"), ray=None):
    """A field with its metadata. ray: what the setting becomes in Ray, for docs/configuration.md; each
    `ray start --flag` and variable it names in backticks is checked against raycmd and rayenv by
    tests/unit/test_settings_ray.py; OURS when seedcore-boot alone reads it."""
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

    # GCS fault tolerance (head): see redisft.py.
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

    # Mutual TLS across the cluster from one CA: see tls.py and docs/security.md. Ray's own variables set them too.
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
                           "the GCS (servedrain.py); false keeps Ray's behaviour", roles=("head",),
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


def _parse(name, raw, source):
    """Turn a raw value (a string from env or flags, or a YAML scalar) into the field's type (values.py)."""
    return parse_value(name, FIELDS[name].metadata["kind"], FIELDS[name].default, raw, source)


def _unknown_key_error(key, source):
    close = difflib.get_close_matches(key, FIELDS, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}?" if close else "run `seedcore-boot config show` for the valid keys"
    return usage_error(f"unknown setting {key!r} in {source}", hint)


def load_file(path):
    """Read a YAML settings file into {key: raw value}; keys are checked here, values in resolve()."""
    data = read_yaml(path, "settings file", "check the path given by --config or SEEDCORE_BOOT_CONFIG")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise usage_error(f"settings file {path} must be a mapping of setting: value")
    for key in data:
        if not isinstance(key, str) or key not in FIELDS:
            raise _unknown_key_error(str(key), path)
    return data


def read_yaml(path, what, hint, loader=yaml.SafeLoader):
    """Parsed YAML of `path`; an unreadable file or a syntax error is one usage line with its position."""
    try:
        with open(path, "rb") as fh:
            text = decode_text(fh.read(), f"{what} {path}")
    except OSError as exc:
        raise usage_error(f"cannot read {what} {path}: {exc.strerror}", hint) from None
    try:
        return yaml.load(text, Loader=loader)
    except RecursionError:  # thousands of nested [ or {: PyYAML's composer recurses
        raise usage_error(f"{path}: YAML nested too deeply", "fix the file's structure") from None
    except (ValueError, TypeError, AttributeError) as exc:
        # PyYAML's SafeLoader constructors let these out for scalars that match a tag's pattern but are no value
        # of it: `2024-13-45` (ValueError from datetime.date), `!!float x`, `!!timestamp x` (AttributeError).
        raise usage_error(f"{path}: a YAML value that is not what its form says ({exc})",
                          "quote it to make it a string, or fix the date or number") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise usage_error(f"{path}: YAML error at {where}: {problem}", "fix the syntax at that line") from None


_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def decode_text(data, what):
    """A file's bytes as text: UTF-8, or UTF-8/16/32 with a byte order mark (Windows editors and PowerShell's
    `>` write UTF-16 with one; YAML allows all of them). Anything else (a Latin-1 comment) is one usage line
    with the offending byte's line."""
    encoding = next((enc for bom, enc in _BOMS if data.startswith(bom)), "utf-8")
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1 if encoding == "utf-8" else None
        where = f" (byte 0x{data[exc.start]:02x} on line {line})" if line else ""
        raise usage_error(f"{what} is not {encoding.upper()} text{where}",
                          "save it as UTF-8 (in PowerShell: Out-File -Encoding utf8)") from None
    if "\0" in text:
        raise usage_error(f"{what} holds NUL characters: not a text file, or UTF-16 without a byte order mark",
                          "save it as UTF-8 (in PowerShell: Out-File -Encoding utf8)")
    return text


def _from_env(env):
    """{name: (raw, env var)} for settings present in the environment; conflicting aliases are an error."""
    found = {}
    for name in FIELDS:
        given = [(var, env[var]) for var in env_names(name) if env.get(var, "").strip() != ""]
        if not given:
            continue
        parsed = {var: _parse(name, raw, f"${var}") for var, raw in given}
        if len(set(map(repr, parsed.values()))) > 1:
            listing = ", ".join(f"{var}={raw}" for var, raw in given)
            raise usage_error(f"conflicting environment for {name}: {listing}",
                              f"set only one of {', '.join(v for v, _ in given)}")
        var, raw = given[0]
        found[name] = (raw, var)
    return found


@dataclass(frozen=True)
class Resolved:
    settings: Settings
    sources: Mapping[str, str]  # name -> "default" | "file PATH" | "kuberay" | "env VAR" | "flag"
    config_path: Optional[str]
    platform: Optional[kuberay.Pod] = None  # the KubeRay pod this runs in, if any
    injected: frozenset = frozenset()  # settings set only by variables the platform injects, not by the user


def resolve(flags=None, env=None, config_path=None, role=None):
    """The one place precedence lives: defaults < YAML file < KubeRay's generated command < environment < flags.

    flags holds only the options the user actually gave, already typed by click or as strings. role: the
    node being started ("head" or "worker"), checked against what a KubeRay pod says it is. A value that
    KubeRay's command gives and another layer gives differently is an error naming both: under KubeRay the
    pod's rayStartParams and limits are the user's intent, and one of the two would be silently dropped.
    """
    flags = dict(flags or {})
    env = os.environ if env is None else env
    for key in flags:
        if key not in FIELDS:
            raise _unknown_key_error(key, "flags")
    config_path = config_path or (env.get(CONFIG_ENV) or None)
    pod = kuberay.pod(env, role)
    layers = []
    if config_path:
        layers += [(k, v, f"file {config_path}") for k, v in load_file(config_path).items()]
    if pod:
        layers += [(k, v, kuberay.SOURCE) for k, v in pod.values.items()]
    layers += [(k, raw, f"env {var}") for k, (raw, var) in _from_env(env).items()]
    layers += [(k, v, "flag") for k, v in flags.items()]

    values, sources = {}, {name: "default" for name in FIELDS}
    from_pod = {}
    for name, raw, source in layers:
        value = _parse(name, raw, pod.where(name) if source == kuberay.SOURCE else source)
        if source == kuberay.SOURCE:
            from_pod[name] = value
            if sources[name] != "default":  # the settings file gave it too
                value = _with_pod(name, value, pod.where(name), values[name], sources[name])
                source = f"{sources[name]} and {source}"
        elif name in from_pod:
            value = _with_pod(name, from_pod[name], pod.where(name), value, source)
            source = f"{sources[name]} and {source}"
        values[name] = value
        sources[name] = source
    settings = Settings(**values)
    _check(settings, sources, pod)
    if settings.redis_address and not settings.storage_namespace:
        from ..ray.redisft import default_namespace

        settings = dataclasses.replace(settings, storage_namespace=default_namespace(settings.gcs_port))
    injected = frozenset(name for name, source in sources.items()
                         if pod and source.startswith("env ") and source[4:] in kuberay.INJECTED)
    return Resolved(settings, sources, config_path, pod, injected)


def _with_pod(name, pod_value, pod_where, value, source):
    """The value of a setting that KubeRay's command and another layer both give: the same value, or (extra
    ray start arguments) both lists joined; anything else is a settings error naming both places."""
    if name == "ray_args":
        theirs = {a.split("=", 1)[0]: a for a in pod_value}
        for arg in value:
            flag = arg.split("=", 1)[0]
            if flag in theirs and theirs[flag] != arg:
                raise usage_error(f"ray start {flag} is {theirs[flag]!r} in {pod_where} but {arg!r} in ray_args "
                                  f"(from {source})", "set it in one place")
        return pod_value + tuple(a for a in value if a not in pod_value)
    if value != pod_value:
        raise usage_error(f"{name} is {_show(name, pod_value)} from {pod_where} but {_show(name, value)} from "
                          f"{source}", "set it in one place: the pod's rayStartParams (or its limits), or "
                          f"{source.replace('env ', '$')}, not both")
    return value


def _show(name, value):
    return repr(masked(name, value))


def _check(s, sources, pod=None):
    if s.min_worker_port > s.max_worker_port:
        raise usage_error(f"min_worker_port {s.min_worker_port} is above max_worker_port {s.max_worker_port}",
                          "swap them or widen the range")
    if s.redis_address:
        from ..ray.redisft import check_namespace, parse_address

        parse_address(s.redis_address)
        if s.storage_namespace:
            check_namespace(s.storage_namespace)
    if s.redis_password and s.redis_password_file:
        raise usage_error(f"redis_password and redis_password_file are both set (from {sources['redis_password']} "
                          f"and {sources['redis_password_file']})", "keep one of them")
    if pod and pod.rayservice and (s.serve_app or s.serve_config is not None):
        name = "serve_app" if s.serve_app else "serve_config"
        raise usage_error(f"{name} is set (from {sources[name]}) but this head belongs to a RayService, whose "
                          "serveConfigV2 KubeRay deploys itself: two configs would replace each other",
                          f"put the applications in the RayService's serveConfigV2 and unset {name}")
    from ..tls.nodetls import check_settings

    check_settings(s, sources)
    if s.serve_app and s.serve_config is not None:
        raise usage_error("serve_app and serve_config are both set (from "
                          f"{sources['serve_app']} and {sources['serve_config']})", "keep one of them")


def describe(resolved):
    """Rows of (name, value, source) for `config show`."""
    return [(name, shown(resolved.settings, name), resolved.sources[name]) for name in FIELDS]


def shown(settings, name):
    """A setting's value as it may be printed: secrets never are."""
    return masked(name, getattr(settings, name))


def masked(name, value):
    return "***" if FIELDS[name].metadata["kind"] == "secret" and value else value
