"""GCS fault tolerance with an external Redis: the address, the password, the namespace, and a preflight
that talks to Redis itself (RESP over a socket: no client library, no ray import) before Ray starts.

What Ray 2.20 does with it (read from the wheel, and measured here with Debian's redis-server):
- RAY_REDIS_ADDRESS turns it on: HOST:PORT, redis://HOST:PORT, or rediss:// for TLS. Credentials in the
  URL are not parsed; the password goes as `ray start --redis-password` (a hidden option), which Ray puts
  on gcs_server's command line, where anyone on the machine who can list processes can read it.
- RAY_external_storage_namespace (default "default", no '@') names one Redis hash that holds the whole
  cluster. A head started again on the same namespace silently reloads that cluster (session included);
  only one GCS may use a namespace at a time; `ray stop` never cleans it. So: a namespace per cluster, the
  same one across restarts of its head, and an explicit way to start fresh (DEL of that one hash).
"""

import socket
import ssl

from ..config.addresses import parse_redis_address
from ..errors import BootError


def password(settings):
    """The Redis password from redis_password or redis_password_file (Docker and Kubernetes secrets)."""
    if settings.redis_password_file:
        try:
            with open(settings.redis_password_file, encoding="utf-8") as fh:
                return fh.read().strip()
        except OSError as exc:
            raise BootError(f"cannot read redis_password_file {settings.redis_password_file}: {exc.strerror}",
                            "mount the secret there, or give redis_password instead") from None
        except UnicodeDecodeError:
            raise BootError(f"redis_password_file {settings.redis_password_file} is not UTF-8 text",
                            "write the password as plain UTF-8 text") from None
    return settings.redis_password or ""


# --- RESP, just enough for AUTH, PING, EXISTS, HLEN and DEL ------------------------------------------
def _command(*args):
    out = [f"*{len(args)}\r\n".encode()]
    for a in args:
        b = a.encode() if isinstance(a, str) else a
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


def _reply(f):
    line = f.readline()
    if not line:
        raise ConnectionError("Redis closed the connection")
    kind, rest = line[:1], line[1:].rstrip(b"\r\n").decode("utf-8", "replace")
    if kind == b"+":
        return rest
    if kind == b"-":
        raise RedisError(rest)
    try:
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else f.read(n + 2)[:-2]
    except ValueError:  # a peer that speaks something else
        pass
    raise ConnectionError(f"not a Redis reply: {line[:40]!r}")


class RedisError(Exception):
    pass


class Redis:
    def __init__(self, host, port, tls=False, password="", timeout=3.0):
        self.where = f"{host}:{port}"
        sock = socket.create_connection((host, port), timeout=timeout)
        if tls:
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
        self.sock, self.file = sock, sock.makefile("rb")
        if password:
            self.call("AUTH", password)

    def call(self, *args):
        self.sock.sendall(_command(*args))
        return _reply(self.file)

    def close(self):
        self.file.close()
        self.sock.close()


def preflight(settings, log, fresh=False):
    """Redis reachable and the password accepted, else one line with the fix (Ray is not started). Says
    whether the namespace holds an earlier cluster; with `fresh`, deletes that (and only that) first."""
    host, port, tls = parse_redis_address(settings.redis_address)
    ns, where = settings.storage_namespace, f"{host}:{port}"
    try:
        r = Redis(host, port, tls, password(settings))
        try:
            r.call("PING")
            if fresh and r.call("EXISTS", ns):
                r.call("DEL", ns)
                log.event("redis", f"removed the cluster state of namespace {ns!r} from Redis {where} "
                          "(redis_fresh); other namespaces untouched")
            entries = r.call("HLEN", ns) if r.call("EXISTS", ns) else 0
        finally:
            r.close()
    except RedisError as exc:
        text = str(exc)
        if text.startswith(("WRONGPASS", "NOAUTH", "ERR invalid password", "ERR AUTH")):
            raise BootError(f"Redis {where} refused the password: {text}",
                            "set redis_password (REDIS_PASSWORD) or redis_password_file to Redis's requirepass"
                            ) from None
        raise BootError(f"Redis {where} answered with an error: {text}", "check that it is a Redis server") from None
    except (OSError, ConnectionError, ssl.SSLError) as exc:
        raise BootError(f"Redis {where} is not reachable: {getattr(exc, 'strerror', None) or exc}",
                        "start Redis, or fix redis_address (RAY_REDIS_ADDRESS); without fault tolerance, "
                        "unset it") from None
    if entries:
        log.event("redis", f"recovering cluster state from Redis {where}, namespace {ns!r} ({entries} entries)")
    else:
        log.event("redis", f"no earlier cluster in Redis {where} under namespace {ns!r}: starting a new one")
    return entries
