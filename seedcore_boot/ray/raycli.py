"""Ray's own `ray` CLI (`ray.scripts.scripts:main`, what the `ray` command runs), minus some of its waits.

`python -m seedcore_boot.ray.raycli start --head ...` behaves as `ray start --head ...` except that, right after
spawning gcs_server, it waits for the GCS port to accept before Ray's first connect. Ray 2.20 connects
~8 ms after the spawn, finds the port still closed and then sleeps a fixed 1 s before retrying: measured
here, `Node._init_gcs_client` took 1.005 s in 5 of 5 head starts, and about 25 ms with this wait.
On any other Ray (where the method is missing) it runs the CLI unchanged.

A second change: Ray's SIGTERM handler (Node._register_shutdown_hooks) is made to run once. It stops every
component under a lock of the node's; a second SIGTERM arriving while it waits for a component re-enters
it and deadlocks on that lock (py-spy: sigterm_handler -> kill_all_processes -> Popen.wait ->
sigterm_handler -> _kill_process_type, futex wait). Measured: after SIGKILL of our supervisor, `ray
start` (SIGTERM by PR_SET_PDEATHSIG) hung so in 3 of 6 runs, leaving the node to the watchdog after the
grace period; with the handler run once, its own in-order stop takes ~1.7 s.

A third, on Ray 2.20.0 with the dashboard's port pinned (ours always is): the dashboard starts beside the
raylet instead of before it. Ray's start_head_processes calls services.start_api_server, which spawns
dashboard.py and then polls the GCS KV every 0.1 s (200 times) for the key "dashboard" (namespace
"dashboard") until the dashboard has written `<host>:<port>` there (dashboard/head.py, once its HTTP
server listens: 1.3-2.8 s here); only then does ray start go on to the raylet, whose command line
carries that URL (--webui, node.py start_raylet, for its workers) and Node.start_api_server stores it
as "webui:url" (what `ray start --address` and a driver's ray.init() read back). The raylet needs the
URL only because the dashboard may pick its own port (--port-retries); with the port pinned Ray passes
--port-retries=0, so the dashboard binds exactly that port or exits, and what head.py writes is known
in advance (see dashboard_url): we answer that poll with it. Everything else is Ray's own code: its port
test, the dashboard's command line and spawn, the dashboard registered among the node's processes (so
`ray start --block` notices and reports its death), "" for a minimal dashboard. The dashboard still
writes its own "dashboard" key (what JobSubmissionClient and `ray job` read) once it listens. A dashboard
that dies no longer fails `ray start` before the raylet: `ray start --block` reports it ("Some Ray
subprocesses exited unexpectedly: dashboard") a second after its marker and exits 1, and our health
phase requires the dashboard to answer in any case.

A fourth, for `start` on Ray 2.20.0: Ray's CLI module imports three command groups `ray start` never runs,
each in a try block that leaves the group out when its import fails (the end of ray/scripts/scripts.py):
`ray serve` (ray.serve.scripts: Serve, FastAPI, ...), `ray job` and `ray list/get/summary/logs`. They are
marked absent (None in sys.modules) first, so `ray start` leaves them out. Measured: importing
ray.scripts.scripts took 1.16 s of CPU with them and 0.45 s without; that is on the way to every node's
"Ray runtime started.", and on a shared machine every node's start pays it at once.

With GATE in its environment it imports Ray's CLI (about 0.5 s) and then waits for "go" on stdin, so a
worker pays for the import while it waits for its head rather than after the head is up.
"""

import functools
import inspect
import os
import signal
import socket
import sys
import time

GATE = "SEEDCORE_BOOT_GATE"
GCS_WAIT = 10.0  # past this Ray's own retries take over, with its own errors
DASHBOARD_RAY = "2.20.0"  # the Ray whose code was read (above); any other runs unchanged
CLI_GROUPS = ("ray.serve.scripts", "ray.dashboard.modules.job.cli", "ray.util.state.state_cli")
_API_SERVER_ARGS = ("include_dashboard", "raise_on_failure", "host", "gcs_address", "node_ip_address", "port")


def wait_for_port(host, port, alive, limit=GCS_WAIT, step=0.01):
    """True once host:port accepts a TCP connection; False when alive() turns false or time runs out."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and alive():
        try:
            socket.create_connection((host, port), timeout=0.2).close()
            return True
        except OSError:
            time.sleep(step)
    return False


def sigterm_once(handler):
    """Ray's SIGTERM handler, made to ignore further SIGTERMs once it runs (it is not re-entrant)."""

    @functools.wraps(handler)
    def once(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        return handler(signum, frame)

    return once


def patch_ray():
    """Wrap Node._init_gcs_client, services.start_api_server (where it is the one read above) and the
    SIGTERM handler Ray registers; returns whether the GCS wait is installed."""
    from ray._private import node, utils

    register = utils.set_sigterm_handler
    if not getattr(register, "_seedcore_once", False):
        def set_sigterm_handler(handler):
            return register(sigterm_once(handler))

        set_sigterm_handler._seedcore_once = True
        utils.set_sigterm_handler = set_sigterm_handler

    patch_dashboard_start()
    original = getattr(node.Node, "_init_gcs_client", None)
    if original is None or getattr(original, "_seedcore_wait", False):
        return original is not None
    node.Node._init_gcs_client = wait_before(original)
    return True


def wait_before(connect):
    """Wrap Node._init_gcs_client: on a head, first wait until the GCS it just spawned accepts."""
    from ray._private import ray_constants

    @functools.wraps(connect)
    def _init_gcs_client(self):
        try:
            procs = self.all_processes.get(ray_constants.PROCESS_TYPE_GCS_SERVER) if self.head else None
            if procs:  # a worker's GCS is remote and already up
                host, _, port = self.gcs_address.rpartition(":")
                wait_for_port(host.strip("[]"), int(port), lambda: procs[0].process.poll() is None)
        except Exception:  # noqa: BLE001 - the wait only saves time; Ray's own connect decides
            pass
        return connect(self)

    _init_gcs_client._seedcore_wait = True
    return _init_gcs_client


def dashboard_url(host, port, node_ip):
    """What dashboard/head.py writes under "dashboard" once it listens, or None when it cannot be known.

    head.py maps "localhost" to 127.0.0.1 and writes `127.0.0.1:<port>` for that host, else
    `<node ip>:<port>` (also for 0.0.0.0 and ::, so workers can reach it); the port is the one given when
    Ray passes --port-retries=0, i.e. when the port is pinned."""
    if not port or not host or not node_ip:  # None or 0: the dashboard's port is its own choice
        return None
    host = "127.0.0.1" if host == "localhost" else host
    return f"{host if host == '127.0.0.1' else node_ip}:{int(port)}"


def can_skip_dashboard_wait(start_api_server, version):
    """Whether start_api_server is the one read above: Ray 2.20.0's, with its parameters, polling the KV."""
    try:
        params = inspect.signature(start_api_server).parameters
        names = start_api_server.__code__.co_names
    except (TypeError, ValueError, AttributeError):
        return False
    return (version == DASHBOARD_RAY and all(p in params for p in _API_SERVER_ARGS)
            and {"_internal_kv_get", "DASHBOARD_ADDRESS", "start_ray_process"} <= set(names))


def skip_dashboard_wait(start_api_server, kv, key, namespace):
    """Wrap services.start_api_server: with the dashboard's URL known, its poll of `kv` for `key` in
    `namespace` gets that URL at once; any other call (port not pinned, a question we did not expect) is
    Ray's own."""
    signature = inspect.signature(start_api_server)

    @functools.wraps(start_api_server)
    def wrapped(*args, **kwargs):
        try:
            a = signature.bind(*args, **kwargs).arguments
            url = dashboard_url(a["host"], a.get("port"), a["node_ip_address"])
        except (TypeError, KeyError, ValueError):
            url = None
        if url is None:
            return start_api_server(*args, **kwargs)
        get = kv._internal_kv_get

        def known(k, *rest, **kw):
            if k == key and kw.get("namespace") == namespace and not rest:
                return url.encode()
            return get(k, *rest, **kw)

        kv._internal_kv_get = known  # only for this call: ray start is single-threaded here
        try:
            return start_api_server(*args, **kwargs)
        finally:
            kv._internal_kv_get = get

    wrapped._seedcore_dashboard = True
    return wrapped


def patch_dashboard_start():
    """Install skip_dashboard_wait on services.start_api_server (Node.start_api_server looks it up there);
    returns whether it is installed."""
    try:
        import ray
        from ray._private import ray_constants, services
        from ray.experimental import internal_kv
    except ImportError:
        return False
    current = getattr(services, "start_api_server", None)
    if getattr(current, "_seedcore_dashboard", False):
        return True
    if not can_skip_dashboard_wait(current, ray.__version__):
        return False
    services.start_api_server = skip_dashboard_wait(current, internal_kv, ray_constants.DASHBOARD_ADDRESS,
                                                    ray_constants.KV_NAMESPACE_DASHBOARD)
    return True


def skip_cli_groups(argv, version, modules):
    """Mark Ray's other command groups absent when argv runs `start` on the Ray read above; returns which."""
    if argv[1:2] != ["start"] or version != DASHBOARD_RAY:
        return []
    skipped = [name for name in CLI_GROUPS if name not in modules]
    for name in skipped:
        modules[name] = None  # `import` of it raises ImportError, which scripts.py catches
    return skipped


def _released():
    """Block until the supervisor says go (True) or closes the pipe (False); then detach from it."""
    line = sys.stdin.readline()
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)  # Ray's components inherit stdin: not our pipe
    os.close(devnull)
    return line.strip() == "go"


def main():
    patch_ray()
    import ray

    skip_cli_groups(sys.argv, ray.__version__, sys.modules)
    from ray.scripts.scripts import main as ray_main

    if os.environ.pop(GATE, None) and not _released():
        return 0
    sys.argv[0] = "ray"  # click names the program after argv[0] in usage and error lines
    return ray_main()


if __name__ == "__main__":
    sys.exit(main())
