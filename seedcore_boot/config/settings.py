"""A node's settings, resolved from defaults < YAML file < KubeRay's command < environment < flags, with the
source of each value (the table of settings is fields.py; the errors no single value shows, checks.py).
"""

import dataclasses
import difflib
import os
from dataclasses import dataclass
from typing import Mapping, Optional

from ..errors import usage_error
from . import kuberay
from .addresses import default_namespace
from .checks import check
from .fields import CONFIG_ENV, FIELDS, Settings, env_names
from .values import parse as parse_value
from .yamlfile import read_yaml


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
    check(settings, sources, pod)
    if settings.redis_address and not settings.storage_namespace:
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


def describe(resolved):
    """Rows of (name, value, source) for `config show`."""
    return [(name, shown(resolved.settings, name), resolved.sources[name]) for name in FIELDS]


def shown(settings, name):
    """A setting's value as it may be printed: secrets never are."""
    return masked(name, getattr(settings, name))


def masked(name, value):
    return "***" if FIELDS[name].metadata["kind"] == "secret" and value else value
