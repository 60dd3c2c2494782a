"""A setting's raw value (a string from the environment or a flag, or a YAML scalar) turned into its type.

The `kind` comes from the field's metadata in settings.py; nothing here knows which settings exist, except
that the object store has Ray's minimum size.
"""

import ipaddress
import json
import os
import re
import shlex

from .errors import usage_error

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
MIN_OBJECT_STORE = 75 * 1024 * 1024  # ray_constants.OBJECT_STORE_MINIMUM_MEMORY_BYTES


def parse(name, kind, default, raw, source):
    """`raw` as the type of `kind`; a bad value is a usage error naming the setting and where it came from."""

    def bad(why):
        return usage_error(f"bad value {raw!r} for {name} (from {source}): {why}")

    if raw is None:
        if default is None:
            return None
        raise bad("a value is required")
    if kind == "serve_config":
        if isinstance(raw, (str, dict)):
            return raw
        raise bad("expected a file path or a mapping in Ray's Serve config schema")
    if kind == "resources":
        value = _resources(raw)
        if value is None:
            raise bad('expected a JSON mapping of resource names to amounts, e.g. {"accel": 1}')
        return value
    if kind == "args":
        if isinstance(raw, str):
            return tuple(shlex.split(raw))
        if isinstance(raw, (list, tuple)) and all(isinstance(a, (str, int, float)) for a in raw):
            return tuple(str(a) for a in raw)
        raise bad("expected a list of arguments or one shell-quoted string")
    if isinstance(raw, (dict, list)):
        raise bad("expected a single value")
    text = str(raw).strip()
    if kind == "bool":
        if isinstance(raw, bool):
            return raw
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise bad("expected true/false (or 1/0, yes/no)")
    if kind in ("port", "count"):
        if isinstance(raw, bool):
            raise bad("expected a whole number")
        try:
            value = int(text)
        except ValueError:
            raise bad("expected a whole number") from None
        if kind == "port" and not 1 <= value <= 65535:
            raise bad("a port is 1-65535")
        if kind == "count" and value < 0:
            raise bad("must not be negative")
        return value
    if kind == "bytes":
        value = parse_bytes(text)
        if value is None:
            raise bad("expected bytes, or a number with a unit: 512mb, 2gb (units are binary, as Docker's)")
        if name == "object_store_memory" and value < MIN_OBJECT_STORE:
            raise bad("Ray's smallest object store is 75 MiB (78643200 bytes)")
        return value
    if kind == "seconds":
        try:
            value = float(text)
        except ValueError:
            raise bad("expected a number of seconds") from None
        if value < 0:
            raise bad("must not be negative")
        return value
    if kind == "ip":
        try:
            return str(ipaddress.ip_address(text))
        except ValueError:
            raise bad("expected an IP address") from None
    if kind == "host":
        if not text or any(c.isspace() for c in text):
            raise bad("expected an IP address or host name")
        return text
    if kind == "abspath":
        if not os.path.isabs(text):
            raise bad("expected an absolute path")
        return os.path.normpath(text)
    if kind.startswith("choice:"):
        choices = kind.split(":", 1)[1].split(",")
        if text not in choices:
            raise bad("expected one of " + ", ".join(choices))
        return text
    if not text:
        raise bad("must not be empty")
    return text


def _resources(raw):
    """Custom resources as canonical JSON (`{"a": 1}`), from a JSON string or a YAML mapping; None if not that."""
    try:
        value = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return None
    if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0
            for k, v in value.items()):
        return None
    return json.dumps(value, sort_keys=True)


_UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1024, "kib": 1024, "m": 1024**2, "mb": 1024**2, "mib": 1024**2,
          "g": 1024**3, "gb": 1024**3, "gib": 1024**3}


def parse_bytes(text):
    """Bytes from `2147483648`, `2gb`, `1.5GiB`, `512m` (binary units, as Docker's shm_size); None if not."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", str(text))
    if not m or m.group(2).lower() not in _UNITS:
        return None
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])
