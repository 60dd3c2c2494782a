"""Where a node's Ray keeps its files (sessions, logs, sockets): the temp_dir setting on a head, the head's
temp dir on a worker.

Ray 2.20 ignores `--temp-dir` on a worker: `ray start` (ray/scripts/scripts.py, start) warns "temp_dir is
only configurable from a head node" and drops it, and the worker's Node (ray/_private/node.py,
Node._init_temp) reads the head's path from the head's GCS (internal KV key "temp_dir", namespace "session",
put there by the head's Node._write_cluster_info_to_kv), retrying 20 times 2 s apart
(_private/utils.py, internal_kv_get_with_retry). So a worker whose head runs on /data/ray keeps its sessions
and logs under /data/ray on its own machine, whatever its own setting says. The worker reads the same entry
once its head answers, and checks that directory (writable, free space, old sessions) and shows its log
tails.

seedcore-boot's own files stay under the worker's temp_dir setting (<temp_dir>/seedcore-boot: the node and
ready files, the issued TLS pair): `status`, `stop` and `tls env` on that machine find them with the worker's
own settings, and they exist before the head answers (the TLS pair is what the worker's first call to its
head presents; the leftovers mark in `ray start`'s environment is fixed when the gated child is spawned).
"""

import os
import time

from ..config.addresses import host_port
from ..errors import BootError
from . import gcsprobe

KEY, NAMESPACE = b"temp_dir", b"session"
PATIENCE = 40.0  # Ray's own for the same read: 20 tries, 2 s apart
WORKER_FIX = ("make it writable for this user on this machine, or start the head with a temp_dir that every "
              "worker machine can write (Ray 2.20 gives each worker its head's temp dir path)")


def parse(value, where):
    """The path in the head's KV entry; BootError for anything a worker's Ray could not use as a directory."""
    try:
        path = value.decode("utf-8")
    except UnicodeDecodeError:
        path = ""
    if not path.startswith("/") or "\0" in path:
        raise BootError(f"the head at {where} recorded a temp dir that is not an absolute path ({value[:80]!r})",
                        "start the head with an absolute temp_dir")
    return os.path.normpath(path)


def of_head(ip, port, sleep, patience=PATIENCE):
    """The temp dir the worker's Ray will use: the head's, from its GCS. The GCS answers CheckAlive a moment
    before the head's node has recorded it, so it is asked again for as long as Ray itself would."""
    where = host_port(ip, port)
    deadline = time.monotonic() + patience
    while True:
        try:
            value, last = gcsprobe.kv_get(ip, port, KEY, NAMESPACE), "the head has not recorded it yet"
        except gcsprobe.GcsError as exc:
            value, last = b"", str(exc)
        if value:
            return parse(value, where)
        if time.monotonic() >= deadline:
            raise BootError(f"the head at {where} answers but gave no temp dir within {patience:g} s ({last}); "
                            "a worker's Ray reads it there too and would fail the same way",
                            "check the head's log: it may have failed while starting")
        sleep(0.5)


def worker_line(settings, ray_dir):
    """(level, message): the worker's one line about its temp dir, a warning where Ray ignores the setting."""
    if os.path.normpath(settings.temp_dir) == ray_dir:
        return "info", f"Ray's temp dir is {ray_dir}, the head's (read from its GCS), as temp_dir says"
    return "warning", (f"temp_dir {settings.temp_dir} is ignored by Ray on a worker: Ray 2.20 gives every worker "
                       f"its head's temp dir, {ray_dir} (read from the head's GCS), so that is the one checked "
                       f"here; seedcore-boot's own files stay in {settings.state_dir()}")


def plan_line(settings):
    """What --dry-run and the plan say of a worker's temp dir, before the head is known."""
    return (f"temp dir: a worker's Ray uses its head's temp dir (Ray 2.20 ignores a worker's temp_dir); it is "
            f"read from the head's GCS and checked once the head answers; seedcore-boot's own files go to "
            f"{settings.state_dir()}")
