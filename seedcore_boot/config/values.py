"""A setting's raw value (a string from the environment or a flag, or a YAML scalar) turned into its type.

The `kind` comes from the field's metadata in fields.py; nothing here knows which settings exist, except
that the object store has Ray's minimum size.
"""

import ipaddress
import json
import math
import os
import re
import shlex
import threading

from ..errors import usage_error

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
    if isinstance(raw, str) and "\0" in raw:  # only YAML can hold one; open() and exec refuse it later
        raise bad("a NUL character")
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
            try:
                return tuple(shlex.split(raw))
            except ValueError as exc:  # "No closing quotation": --node-name=bob's-node
                raise bad(f"not a shell-quoted string ({exc})") from None
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
        if not math.isfinite(value):  # float() takes inf and nan; a deadline of nan never comes
            raise bad("expected a finite number of seconds")
        if value > threading.TIMEOUT_MAX:  # beyond it, a wait raises OverflowError
            raise bad(f"at most {threading.TIMEOUT_MAX:.0f} seconds")
        if value < 0:
            raise bad("must not be negative")
        return value
    if kind == "ip":
        try:
            return str(ipaddress.ip_address(text))
        except ValueError:
            raise bad("expected an IP address") from None
    if kind == "host":
        why = host_problem(text)
        if why:
            raise bad(f"expected an IP address or host name ({why})")
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
    except (ValueError, RecursionError):  # RecursionError: thousands of nested brackets
        return None
    if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            and v >= 0 for k, v in value.items()):
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


def host_problem(host):
    """Why `host` is no IP address or host name a socket can be given, or None. Python's socket calls encode a
    name with the idna codec, which raises UnicodeError (not OSError) for an empty label (`a..b`) or one over
    63 characters: refused here, before it is dialed."""
    if not host or any(c.isspace() or c in "/@\0" for c in host):
        return "empty, or with a space, '/' or '@'"
    try:
        ipaddress.ip_address(host)
        return None
    except ValueError:
        pass
    try:
        host.encode("idna")
    except UnicodeError:
        return "a DNS name is labels of 1 to 63 characters between dots"
    return None
