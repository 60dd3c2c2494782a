"""Ray's own `ray` CLI (`ray.scripts.scripts:main`, what the `ray` command runs), with one change for heads.

`python -m seedcore_boot.raycli start --head ...` behaves as `ray start --head ...` except that, right after
spawning gcs_server, it waits for the GCS port to accept before Ray's first connect. Ray 2.20 connects
~8 ms after the spawn, finds the port still closed and then sleeps a fixed 1 s before retrying: measured
here, `Node._init_gcs_client` took 1.005 s in 5 of 5 head starts, and about 25 ms with this wait.
On any other Ray (where the method is missing) it runs the CLI unchanged.

With GATE in its environment it imports Ray's CLI (about 1 s) and then waits for "go" on stdin, so a
worker pays for the import while it waits for its head rather than after the head is up.
"""

import functools
import os
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


def patch_ray():
    """Wrap Node._init_gcs_client of the installed Ray; returns whether it could."""
    from ray._private import node, ray_constants

    original = getattr(node.Node, "_init_gcs_client", None)
    if original is None or getattr(original, "_seedcore_wait", False):
        return original is not None

    @functools.wraps(original)
    def _init_gcs_client(self):
        procs = self.all_processes.get(ray_constants.PROCESS_TYPE_GCS_SERVER) if self.head else None
        if procs:  # a head that just spawned its GCS; a worker's GCS is remote and already up
            host, _, port = self.gcs_address.rpartition(":")
            wait_for_port(host.strip("[]"), int(port), lambda: procs[0].process.poll() is None)
        return original(self)

    _init_gcs_client._seedcore_wait = True
    node.Node._init_gcs_client = _init_gcs_client
    return True


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
