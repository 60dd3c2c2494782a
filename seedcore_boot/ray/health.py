"""HTTP and TCP probes of a node's endpoints; readiness waits on them and `status` reports them."""

import json
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from http.client import HTTPException
from typing import Callable, Optional

from ..errors import BootError

LOOPBACK = "127.0.0.1"


def local_host(host):
    """Where this machine reaches a server bound to `host`."""
    return LOOPBACK if host in ("", "0.0.0.0", "::", None) else host


def http(method, url, body=None, timeout=2.0):
    """(status, text) of one request; status 0 with the reason when nothing answered."""
    data = None
    headers = {}
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, exc.read().decode("utf-8", "replace")
        except (HTTPException, OSError) as cut:  # an error status whose body breaks off
            return exc.code, _not_http(cut)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return 0, str(reason)
    except HTTPException as exc:  # a peer that is not HTTP: BadStatusLine, IncompleteRead, ...
        return 0, _not_http(exc)


def _not_http(exc):
    return f"not an HTTP answer ({type(exc).__name__}: {str(exc)[:100]})"


@dataclass(frozen=True)
class Probe:
    name: str
    target: str  # http://... or tcp://host:port
    accept: Optional[Callable[[int, str], bool]] = None

    def once(self, timeout=1.0):
        """(ok, detail)."""
        if self.target.startswith("tcp://"):
            host, port = self.target[6:].rsplit(":", 1)
            try:
                with socket.create_connection((host, int(port)), timeout=timeout):
                    return True, "accepting connections"
            except OSError as exc:
                return False, exc.strerror or str(exc)
        status, text = http("GET", self.target, timeout=timeout)
        if status == 0:
            return False, text
        ok = self.accept(status, text) if self.accept else status == 200
        return ok, f"HTTP {status}" + ("" if ok else f": {text.strip()[:200]}")


def _is_version(status, text):
    try:
        answer = json.loads(text)
    except (ValueError, RecursionError):
        return False
    return status == 200 and isinstance(answer, dict) and "ray_version" in answer


def node_probes(settings, role):
    s = settings
    probes = []
    if role == "head":
        dash = f"http://{local_host(s.dashboard_host)}:{s.dashboard_port}"
        probes += [
            Probe("dashboard", f"{dash}/api/version", _is_version),
            Probe("gcs", f"{dash}/api/gcs_healthz", lambda st, t: st == 200 and "success" in t),
            Probe("client", f"tcp://{LOOPBACK}:{s.client_port}"),
        ]
    probes += [
        Probe("agent", f"http://{LOOPBACK}:{s.dashboard_agent_http_port}/api/local_raylet_healthz"),
        Probe("metrics_export", f"http://{LOOPBACK}:{s.metrics_export_port}/metrics"),
    ]
    if role == "head" and not s.disable_metrics_server:
        probes.append(Probe("dashboard_metrics", f"http://{LOOPBACK}:{s.dashboard_metrics_port}/metrics"))
    return probes


def wait_all(probes, deadline, sleep, what="node"):
    """Poll until every probe passes; sleep() may raise to abort (stop requested, child died)."""
    pending = {p.name: p for p in probes}
    last = {}
    while pending:
        for name, p in list(pending.items()):
            ok, detail = p.once(timeout=min(1.0, max(0.1, deadline - time.monotonic())))
            if ok:
                del pending[name]
            else:
                last[name] = detail
        if not pending:
            return
        if time.monotonic() >= deadline:
            worst = ", ".join(f"{n} ({pending[n].target}: {last.get(n, '?')})" for n in pending)
            raise BootError(f"{what} not healthy in time: {worst} did not answer",
                            "read the Ray log tails above; raise ready_timeout if the machine is slow")
        # A pass costs about a millisecond of CPU (a refused connect is answered at once), and every poll
        # interval is a delay after the last endpoint comes up: 50 ms (was 200 ms, half of it lost on average).
        sleep(0.05)


def report(probes):
    """[(name, target, ok, detail)] of one pass, for `status`."""
    return [(p.name, p.target, *p.once(timeout=2.0)) for p in probes]
