"""Ray's own `ray` CLI (`ray.scripts.scripts:main`, what the `ray` command runs), with one change for heads.

`python -m seedcore_boot.raycli start --head ...` behaves as `ray start --head ...` except that, right after
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

With GATE in its environment it imports Ray's CLI (about 1 s) and then waits for "go" on stdin, so a
worker pays for the import while it waits for its head rather than after the head is up.
"""

import functools
import os
import signal
import socket
import sys
import time

GATE = "SEEDCORE_BOOT_GATE"
GCS_WAIT = 10.0  # past this Ray's own retries take over, with its own errors


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
    """Wrap Node._init_gcs_client and the SIGTERM handler Ray registers; returns whether it could."""
    from ray._private import node, utils

    register = utils.set_sigterm_handler
    if not getattr(register, "_seedcore_once", False):
        def set_sigterm_handler(handler):
            return register(sigterm_once(handler))

        set_sigterm_handler._seedcore_once = True
        utils.set_sigterm_handler = set_sigterm_handler

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


def _released():
    """Block until the supervisor says go (True) or closes the pipe (False); then detach from it."""
    line = sys.stdin.readline()
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)  # Ray's components inherit stdin: not our pipe
    os.close(devnull)
    return line.strip() == "go"


def main():
    patch_ray()
    from ray.scripts.scripts import main as ray_main

    if os.environ.pop(GATE, None) and not _released():
        return 0
    sys.argv[0] = "ray"  # click names the program after argv[0] in usage and error lines
    return ray_main()


if __name__ == "__main__":
    sys.exit(main())
