"""Serve: the config (Ray's own schema, checked before Ray starts), its deploy through the dashboard's REST
API, and the wait until every application is RUNNING and answers its health route.

Nothing here imports ray: the supervising process stays light, and the REST API answers sooner than the
`serve deploy` CLI, which pays for importing ray.
"""

import datetime
import difflib
import json
import os
import threading
import time

import yaml

from ..ray import raylogs
from ..errors import BootError, usage_error
from ..ray.health import http, local_host
from ..host.nodeaddr import CONTAINER_MARKERS
from ..config.yamlfile import read_yaml
from ..config.values import host_problem

OUR_APP = "seedcore_boot.ml_app:app"
DEFAULT_CONFIG = os.path.join(os.path.dirname(__file__), "default_serve.yaml")
_TOP_KEYS = ("proxy_location", "http_options", "grpc_options", "logging_config", "applications", "target_capacity")
_APP_KEYS = ("name", "route_prefix", "import_path", "runtime_env", "host", "port", "deployments", "args",
             "logging_config")
_FAILED = ("DEPLOY_FAILED", "UNHEALTHY")


class _Lines(dict):
    """A YAML mapping that remembers the line it started on, for messages that point at it."""
    line = None


class _LineLoader(yaml.SafeLoader):
    pass


def _construct_map(loader, node):
    data = _Lines()
    data.line = node.start_mark.line + 1
    yield data
    data.update(loader.construct_mapping(node))


_LineLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)


def _at(label, obj):
    line = getattr(obj, "line", None)
    return f"{label} line {line}" if line else label


def load(source, label=None):
    """A Serve config from a file path, or an inline mapping (from the settings file); validated."""
    if isinstance(source, dict):
        return validate(source, label or "serve_config")
    label = label or source
    data = read_yaml(source, "Serve config", "check the path given by --serve-config or serve_config",
                     loader=_LineLoader)
    return validate(data, label)


def _unknown(keys, allowed, label, obj, what):
    for key in keys:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"allowed: {', '.join(allowed)}"
            raise usage_error(f"{_at(label, obj)}: unknown {what} key {key!r}", hint)


def validate(config, label):
    """The checks Serve would make only after Ray is up, made before: keys, required fields, uniqueness."""
    if not isinstance(config, dict):
        raise usage_error(f"{label}: a Serve config is a mapping with an `applications` list",
                          "see seedcore_boot/default_serve.yaml for the shape")
    _unknown(config, _TOP_KEYS, label, config, "top-level")
    apps = config.get("applications")
    if not isinstance(apps, list) or not apps:
        raise usage_error(f"{_at(label, config)}: `applications` must be a non-empty list",
                          "add at least one application with an import_path")
    names, routes = {}, {}
    for i, app in enumerate(apps):
        if not isinstance(app, dict):
            raise usage_error(f"{label}: applications[{i}] must be a mapping")
        _unknown(app, _APP_KEYS, label, app, "application")
        where = _at(label, app)
        path = app.get("import_path")
        if not isinstance(path, str) or not path.strip():
            raise usage_error(f"{where}: applications[{i}] has no import_path",
                              "give it as module:attribute, e.g. my_pkg.app:app")
        if ":" not in path and "." not in path:
            raise usage_error(f"{where}: import_path {path!r} is not module:attribute",
                              "e.g. my_pkg.app:app")
        name = app.get("name", "default")
        if not isinstance(name, str) or not name:
            raise usage_error(f"{where}: applications[{i}] name {name!r} is not a name", "give it as a string")
        if name in names:
            raise usage_error(f"{where}: duplicate application name {name!r} (also at line {names[name]})",
                              "give every application its own name")
        names[name] = app.line if hasattr(app, "line") else i
        route = app.get("route_prefix", "/")
        if route is not None:
            if not isinstance(route, str) or not route.startswith("/"):
                raise usage_error(f"{where}: route_prefix {route!r} must start with /")
            if route in routes:
                raise usage_error(f"{where}: duplicate route_prefix {route!r} (also application "
                                  f"{routes[route]!r})",
                                  "give every application its own route_prefix")
            routes[route] = name
        deployments = app.get("deployments", [])
        if not isinstance(deployments, list) or not all(isinstance(d, dict) and d.get("name") for d in deployments):
            raise usage_error(f"{where}: deployments must be a list of mappings, each with a name")
    for key in ("http_options", "grpc_options"):
        if key in config and not isinstance(config[key], dict):
            raise usage_error(f"{_at(label, config)}: {key} must be a mapping")
    return plain(config, label)


def plain(value, label, where="", seen=()):
    """The config as JSON can carry it to Serve's REST API: YAML dates and times (`trained_on: 2024-05-01`,
    which a user means as that text) become ISO 8601 strings, as `serve deploy` would send them after its own
    YAML load; what JSON has no form for (binary, sets, a mapping with a date or list as key, an alias that
    contains itself) is one usage line naming where it is."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (datetime.date, datetime.time)):  # datetime is a date
        return value.isoformat()
    if id(value) in seen:
        raise usage_error(f"{label}: {where or 'the config'} contains itself (a YAML alias inside its anchor)")
    seen = (*seen, id(value))
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            key = k.isoformat() if isinstance(k, (datetime.date, datetime.time)) else k
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                raise usage_error(f"{label}: key {k!r} at {where or 'the top'} cannot be a JSON key",
                                  "write the key as a string")
            out[str(key) if not isinstance(key, str) else key] = plain(v, label, f"{where}.{key}".lstrip("."), seen)
        return out
    if isinstance(value, (list, tuple)):
        return [plain(v, label, f"{where}[{i}]", seen) for i, v in enumerate(value)]
    raise usage_error(f"{label}: {where or 'the config'} is {type(value).__name__} {value!r:.60}, which JSON "
                      "cannot carry to Serve", "write it as a string, number, list or mapping")


def for_settings(settings):
    """The Serve config the head will deploy (validated), or None with serve off."""
    if not settings.serve:
        return None
    if settings.serve_app:
        return validate({"applications": [{"name": "default", "route_prefix": "/",
                                           "import_path": settings.serve_app}]}, "serve_app")
    if settings.serve_config is not None:
        return load(settings.serve_config)
    return load(DEFAULT_CONFIG)


def in_container(env=os.environ, markers=CONTAINER_MARKERS):
    return any(os.path.exists(p) for p in markers) or bool(env.get("KUBERNETES_SERVICE_HOST"))


def http_binding(config, settings, sources, env=os.environ, markers=CONTAINER_MARKERS):
    """(host, port): settings given explicitly > the config's http_options > defaults.

    Host defaults to 0.0.0.0 in a container (else nothing outside could reach the apps) and 127.0.0.1
    otherwise. A value set in both places, differently, is refused: one of them would be silently dropped.
    """
    opts = config.get("http_options") or {}
    chosen = {}
    for key, setting in (("host", "serve_http_host"), ("port", "serve_http_port")):
        explicit = sources.get(setting, "default") != "default"
        value = getattr(settings, setting)
        if key in opts and explicit and str(opts[key]) != str(value):
            raise usage_error(f"Serve http_options.{key} is {opts[key]!r} in the Serve config but {setting} is "
                              f"{value!r} (from {sources[setting]})", "set it in one place")
        chosen[key] = value if explicit else opts.get(key, value)
    if chosen["host"] is None:
        chosen["host"] = "0.0.0.0" if in_container(env, markers) else "127.0.0.1"
    if not isinstance(chosen["host"], str) or host_problem(chosen["host"]):
        raise usage_error(f"Serve http_options.host {chosen['host']!r} is not an address or host name")
    return chosen["host"], _port(chosen["port"], "http_options.port")


def grpc_port(config):
    opts = config.get("grpc_options") or {}
    return _port(opts.get("port", 9000), "grpc_options.port") if opts.get("grpc_servicer_functions") else None


def _port(value, what):
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).strip().isdigit() \
            or not 1 <= int(value) <= 65535:
        raise usage_error(f"Serve {what} {value!r} is not a port number", "give it as 1-65535")
    return int(value)


def finalize(config, host, port):
    """Plain JSON-able config with http_options set to what preflight checked."""
    out = json.loads(json.dumps(config))
    out.setdefault("http_options", {})
    out["http_options"].update(host=host, port=port)
    return out


def health_routes(config, override=None):
    """{app: path} probed before an app counts as up: ours has /health under its prefix, others the proxy's."""
    routes = {}
    for app in config["applications"]:
        prefix = (app.get("route_prefix") or "/").rstrip("/")
        if override:
            routes[app.get("name", "default")] = prefix + "/" + override.lstrip("/")
        elif app["import_path"] == OUR_APP:
            routes[app.get("name", "default")] = prefix + "/health"
        else:
            routes[app.get("name", "default")] = "/-/healthz"
    return routes


def instance(dashboard_url):
    """(details, None) of GET /api/serve/applications/ (Serve's instance: apps, http_options), or (None, why)."""
    status, text = http("GET", f"{dashboard_url.rstrip('/')}/api/serve/applications/", timeout=5)
    if status != 200:
        return None, f"HTTP {status}: {text.strip()[:200]}" if status else text
    try:
        details = json.loads(text)
    except (ValueError, RecursionError):
        return None, "not JSON"
    if not isinstance(details, dict):
        return None, "not a JSON object"
    return details, None


def mappings(details, key):
    """{name: entry} of details[key] (Serve's applications, proxies, an app's deployments), keeping only the
    entries that are mappings: the answer comes from whatever listens on the dashboard's port."""
    found = details.get(key) if isinstance(details, dict) else None
    return {str(k): v for k, v in found.items() if isinstance(v, dict)} if isinstance(found, dict) else {}


class ServeFailed(BootError):
    pass


# Right after a head starts, the GCS can be alive while the head is not yet in its actor scheduler's resource
# view; an actor pinned to the head (soft=False: Serve's proxy) then fails at once as "infeasible" and the
# PUT answers 500 (seen here: 1 of about a dozen starts with workers joining at the same moment). The head
# becomes schedulable a moment later, so that one answer is retried, briefly.
START_RACE_RETRIES = 10
START_RACE_PAUSE = 0.5


def start_race(text):
    return "ActorUnschedulableError" in text and "NodeAffinitySchedulingStrategy" in text


class Deployer:
    """PUT a config to the dashboard, then wait until it is RUNNING and every health route answers 200."""

    def __init__(self, dashboard_url, config, health, log):
        self.dashboard_url = dashboard_url.rstrip("/")
        self.config = config
        self.health = health
        self.log = log
        opts = config.get("http_options", {})
        self.serve_url = f"http://{local_host(opts.get('host'))}:{opts.get('port', 8000)}"
        self._before = {}

    def applications(self):
        details, err = instance(self.dashboard_url)
        return (mappings(details, "applications"), None) if details is not None else (None, err)

    def put(self):
        apps, _ = self.applications()
        self._before = {n: a.get("last_deployed_time_s") for n, a in (apps or {}).items()}
        for attempt in range(1, START_RACE_RETRIES + 1):
            status, text = http("PUT", f"{self.dashboard_url}/api/serve/applications/", body=self.config,
                                timeout=30)
            if not (status == 500 and start_race(text)) or attempt == START_RACE_RETRIES:
                break
            self.log.warn("serve", f"Serve could not place its actor on the head yet (Ray's start-up race, "
                          f"ray-project/ray#64285); deploying again in {START_RACE_PAUSE:g} s")
            time.sleep(START_RACE_PAUSE)
        if status != 200:
            raise ServeFailed(f"Serve rejected the config (HTTP {status}): {_first_line(text)}",
                              "fix the Serve config; it uses Ray's `serve deploy` schema")

    def put_in_background(self):
        """PUT from a thread, so the supervisor keeps watching Ray while Serve's controller starts."""
        self._put_error = None
        self._put_done_at = None

        def run():
            try:
                self.put()
            except BootError as exc:
                self._put_error = exc
            except Exception as exc:  # noqa: BLE001 - reported as a Serve failure, not a thread traceback
                self._put_error = ServeFailed(f"deploying the Serve config failed: {exc}")
            self._put_done_at = time.monotonic()

        self._put_thread = threading.Thread(target=run, name="serve-put", daemon=True)
        self._put_thread.start()

    def join_put(self, deadline, sleep):
        while self._put_thread.is_alive():
            if time.monotonic() >= deadline:
                raise ServeFailed("the dashboard did not answer the Serve deploy in time",
                                  "see the dashboard log tail; raise ready_timeout if the machine is slow")
            sleep(0.05)
        if self._put_error:
            raise self._put_error

    def wait(self, deadline, sleep):
        names = [a.get("name", "default") for a in self.config["applications"]]
        last = "no answer yet"
        while True:
            apps, err = self.applications()
            if apps is not None:
                current = {n: apps.get(n) or {} for n in names}
                fresh = {n: a for n, a in current.items()
                         if a.get("last_deployed_time_s") != self._before.get(n) or n not in self._before}
                for n, a in fresh.items():
                    if a.get("status") in _FAILED:
                        raise ServeFailed(f"Serve application {n!r} is {a['status']}: {app_message(a)}",
                                          "fix the application (its error is above); see the Serve log tails")
                states = {n: (current[n].get("status", "NOT_STARTED") if n in fresh else "NOT_STARTED")
                          for n in names}
                if all(s == "RUNNING" for s in states.values()):
                    break
                last = ", ".join(f"{n}={s}" for n, s in states.items())
            else:
                last = err
            if time.monotonic() >= deadline:
                raise ServeFailed(f"Serve applications not RUNNING in time ({last})",
                                  "see the Serve log tails; raise ready_timeout if the deploy is slow")
            sleep(0.1)
        for name, route in self.health.items():
            url = self.serve_url + route
            while True:
                status, text = http("GET", url, timeout=2)
                if status == 200:
                    break
                if time.monotonic() >= deadline:
                    raise ServeFailed(f"Serve application {name!r} is RUNNING but {url} answers "
                                      f"{status or text}", "check the application's health route")
                sleep(0.1)
        return {f"serve_{n}": self.serve_url + (next(a.get("route_prefix") or "/" for a in self.config["applications"]
                                                     if a.get("name", "default") == n)) for n in names}


def _first_line(text):
    lines = [l for l in (text or "").strip().splitlines() if l.strip()]
    return lines[-1][:500] if lines else "(no message)"


def app_message(app):
    msg = _text(app.get("message"))
    for dep in mappings(app, "deployments").values():
        if dep.get("status") in ("UNHEALTHY", "DEPLOY_FAILED") or not msg:
            msg = msg or _text(dep.get("message"))
    lines = [l for l in msg.splitlines() if l.strip()]
    # Serve's message is a traceback; its last line is the error itself.
    return lines[-1][:500] if lines else "(no message)"


def _text(value):
    return value.strip() if isinstance(value, str) else ""


def show_serve_tails(log, temp_dir, since):
    for path, lines in raylogs.tails(temp_dir, since=since, lines=20,
                                     names=("serve/controller_*.log", "serve/replica_*.log")):
        log.block(path, lines)


def deploy_running(url, config_file, settings, log, timeout):
    """`seedcore-boot serve deploy`: PUT config_file to a running head's Serve and wait as the head does."""
    s = settings
    config = load(config_file)
    details, err = instance(url)
    if details is None:
        raise BootError(f"no Serve REST API at {url}: {err}", "start the head, or give --address")
    running = details.get("http_options") if isinstance(details.get("http_options"), dict) else None
    if running and config.get("http_options"):
        for key in ("host", "port"):
            if key in config["http_options"] and str(config["http_options"][key]) != str(running.get(key)):
                log.warn("serve", f"http_options.{key} in {config_file} differs from the running Serve's "
                         f"{running.get(key)!r}; Serve keeps its own until the head restarts")
    opts_http = running or {"host": s.serve_http_host or "127.0.0.1", "port": s.serve_http_port}
    final = finalize(config, opts_http.get("host"), opts_http.get("port", 8000))
    t = log.elapsed()
    log.event("serve", f"deploying {len(final['applications'])} application(s) to {url}")
    deployer = Deployer(url, final, health_routes(config, s.serve_health_route), log)
    deployer.put()
    try:
        endpoints = deployer.wait(time.monotonic() + timeout, time.sleep)
    except ServeFailed:
        show_serve_tails(log, s.temp_dir, since=time.time() - timeout - 60)
        raise
    listing = " ".join(f"{k}={v}" for k, v in endpoints.items())
    log.event("serve", f"deployed in {log.elapsed() - t:.1f} s: {listing}", endpoints=endpoints)
    return 0
