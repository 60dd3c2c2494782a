"""A Serve config, checked before Ray starts: Ray's own schema (keys, required fields, unique names and routes),
read from a file, an inline mapping or serve_app, made plain JSON for the REST API, and a head's plan of it:
the HTTP binding its settings and http_options agree on, its gRPC port, and the route each app's health is
probed at (the deploy itself is deploy.py)."""

import datetime
import difflib
import json
import os
from typing import Dict, NamedTuple, Optional

import yaml

from ..config.values import host_problem
from ..config.yamlfile import read_yaml
from ..errors import usage_error
from ..host.nodeaddr import CONTAINER_MARKERS

OUR_APP = "seedcore_boot.ml_app:app"
DEFAULT_CONFIG = os.path.join(os.path.dirname(__file__), "default_serve.yaml")
_TOP_KEYS = ("proxy_location", "http_options", "grpc_options", "logging_config", "applications", "target_capacity")
_APP_KEYS = ("name", "route_prefix", "import_path", "runtime_env", "host", "port", "deployments", "args",
             "logging_config")


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
                          "see seedcore_boot/serve/default_serve.yaml for the shape")
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


class ServePlan(NamedTuple):
    config: dict  # to PUT, http_options set to the binding the preflight checks
    health: Dict[str, str]  # {app: the route its health is probed at}
    http_host: str
    http_port: int
    grpc_port: Optional[int]  # None: no gRPC proxy


def plan(settings, sources):
    """A head's Serve, decided before Ray starts (its stage of node/plan.py), or None with serve off."""
    config = for_settings(settings)
    if config is None:
        return None
    host, port = http_binding(config, settings, sources)
    return ServePlan(finalize(config, host, port), health_routes(config, settings.serve_health_route), host, port,
                     grpc_port(config))
