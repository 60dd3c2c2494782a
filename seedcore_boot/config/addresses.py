"""The addresses and names settings hold, parsed and checked before anything dials them: the head's GCS
(head_address), an external Redis (redis_address) and the cluster's name in it (storage_namespace), and the
extra names of a node's certificate (tls_dns_names). Each problem is one usage line."""

import ipaddress
import re
import socket

from ..errors import usage_error
from .values import host_problem


def parse_head_address(text):
    """(host, port) from HOST:PORT or [IPv6]:PORT; anything else is a usage error."""
    raw = (text or "").strip()
    bad = usage_error(f"bad head address {text!r}", "give the head's GCS as HOST:PORT, e.g. ray-head:6379")
    if not raw or "://" in raw or raw == "auto":
        raise bad
    bracketed = raw.startswith("[")
    if bracketed:
        host, sep, port = raw[1:].partition("]:")
    else:
        host, sep, port = raw.rpartition(":")
        if ":" in host:  # an IPv6 address without brackets: where does it end and the port begin?
            raise bad
    # isascii: "²".isdigit() is true, and int("²") a ValueError (found by test_props_peers.py)
    if not sep or not host or not (port.isascii() and port.isdigit()) or not 1 <= int(port) <= 65535:
        raise bad
    if ":" in host:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise bad from None
    elif host_problem(host):  # an empty or over-long DNS label: UnicodeError from every socket call
        raise usage_error(f"bad head address {text!r}: {host_problem(host)}",
                          "give the head's GCS as HOST:PORT, e.g. ray-head:6379")
    return host, int(port)


def host_port(host, port):
    """HOST:PORT as every dialer and every reader of a URL takes it: an IPv6 address in brackets
    ("fd00::5:6379" is ambiguous, and http://fd00::5:8265 is no URL)."""
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


_ADDRESS = re.compile(r"(?:(rediss?)://)?(\[[0-9a-fA-F:.]+\]|[^\s:/@\[\]]+):(\d{1,5})/?")


def parse_redis_address(text):
    """(host, port, tls) from HOST:PORT, redis://HOST:PORT or rediss://HOST:PORT; usage error otherwise."""
    raw = (text or "").strip()
    if "@" in raw:
        raise usage_error("redis_address must not carry credentials: Ray 2.20 does not read them from the URL",
                          "give the password as redis_password (REDIS_PASSWORD) or redis_password_file")
    m = _ADDRESS.fullmatch(raw)
    if not m or not 1 <= int(m.group(3)) <= 65535 or host_problem(m.group(2).strip("[]")):
        raise usage_error(f"bad redis_address {text!r}", "give HOST:PORT, redis://HOST:PORT or rediss://HOST:PORT")
    return m.group(2).strip("[]"), int(m.group(3)), m.group(1) == "rediss"


def default_namespace(gcs_port, hostname=None):
    """Stable across restarts of one head (compose keeps its hostname), distinct per head: seedcore-HOST-PORT.
    Where the hostname changes on every restart (a Kubernetes Deployment's pod), set storage_namespace."""
    host = re.sub(r"[^A-Za-z0-9_.-]", "-", hostname or socket.gethostname())
    return f"seedcore-{host}-{gcs_port}"


def check_namespace(ns):
    if not ns or "@" in ns or any(c.isspace() for c in ns):
        raise usage_error(f"bad storage_namespace {ns!r}: Ray 2.20 refuses '@', and it must be one word",
                          "use letters, digits, '-', '_' or '.'")
    return ns


def dns_names(settings):
    """The names tls_dns_names gives, comma- or space-separated."""
    return [n for n in (settings.tls_dns_names or "").replace(",", " ").split() if n]
