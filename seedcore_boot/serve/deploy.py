"""Serve's deploy through the dashboard's REST API, and the wait until every application is RUNNING and answers
its health route (the config it deploys is config.py).

Nothing here imports ray: the supervising process stays light, and the REST API answers sooner than the
`serve deploy` CLI, which pays for importing ray.
"""

import json
import threading
import time

from ..errors import BootError
from ..ray import raylogs
from ..ray.health import http, local_host
from .config import finalize, health_routes, load

_FAILED = ("DEPLOY_FAILED", "UNHEALTHY")


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
