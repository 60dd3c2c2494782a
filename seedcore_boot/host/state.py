"""The files a running node leaves in <temp_dir>/seedcore-boot/: who we are (for `stop`, `status`) and
whether we are ready (for a container HEALTHCHECK)."""

import glob
import json
import os
import time

import psutil

from ..errors import BootError


def _write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, sort_keys=True)
        fh.write("\n")
    os.replace(tmp, path)  # a reader never sees half a file


def remove(path):
    try:
        os.unlink(path)
    except OSError:
        pass  # gone already, or not ours to remove (a status run by another user): nothing to do


_FIX = ("make it writable for uid {uid} (a Docker volume takes the owner of the image's directory it is mounted on: "
        "create that directory in the image as this user), or set temp_dir (--temp-dir or $SEEDCORE_BOOT_TEMP_DIR) "
        "to a writable directory")


def own_dirs(settings, role):
    """seedcore-boot's own directories: the state dir and the ready file's."""
    return [("seedcore-boot's state dir", settings.state_dir()),
            ("the ready file's dir", os.path.dirname(settings.ready_path(role)))]


def check_writable(settings, role):
    """A head's: Ray's temp dir (its temp_dir setting) and our own. (A worker's Ray uses its head's temp dir,
    known once the head answers: raytemp.py; node.run checks it then with check_dirs.)"""
    check_dirs([("Ray's temp dir", settings.temp_dir), *own_dirs(settings, role)])


def check_dirs(dirs, fix=_FIX):
    """Each (what, path) must be writable, or Ray and we fail later with a traceback. A Docker volume mounted
    on a path the image did not create is root-owned: the common way to get here."""
    for what, path in dirs:
        try:
            os.makedirs(path, exist_ok=True)
            probe = os.path.join(path, f".seedcore-boot-write-test.{os.getpid()}")
            with open(probe, "w", encoding="utf-8"):
                pass
            os.unlink(probe)
        except OSError as exc:
            raise BootError(f"cannot write {what} {path}: {exc.strerror} ({_owner(path)}; this process runs as "
                            f"uid {os.getuid()})", fix.format(uid=os.getuid())) from None


def _owner(path):
    """'DIR is owned by uid U, mode 755' for the nearest existing directory on the way to path."""
    while path and not os.path.exists(path):
        path = os.path.dirname(path)
    try:
        st = os.stat(path)
    except OSError:
        return "owner unknown"
    return f"{path} is owned by uid {st.st_uid}, mode {st.st_mode & 0o777:o}"


def node_file(settings, role):
    # Named by the node manager port, which is unique per node on a host, so two workers can share a temp dir.
    return os.path.join(settings.state_dir(), f"{role}-{settings.node_manager_port}.json")


def write_node(settings, role, ports, serve=False, ray_temp_dir=None):
    """ray_temp_dir: where the node's Ray keeps its files when that is not temp_dir (a worker: raytemp.py)."""
    path = node_file(settings, role)
    _write(path, {"pid": os.getpid(), "pidns": pid_namespace(), "role": role, "started": time.time(),
                  "temp_dir": ray_temp_dir or settings.temp_dir,
                  "dashboard_host": settings.dashboard_host, "ports": ports, "serve": serve})
    return path


def write_ready(path, endpoints, serve=None):
    """serve: None (this node deploys no Serve), "deploying", "running" or "down" (serve_optional)."""
    _write(path, {"ready": True, "pid": os.getpid(), "at": time.time(), "endpoints": endpoints, "serve": serve})


def ready_row(settings, role, pid):
    """(name, target, ok, detail) for `status`: the ready file exists and was written by supervisor `pid`.
    The file outlives a SIGKILL (on a Docker volume, a restart too), hence the pid check."""
    path = settings.ready_path(role)
    try:
        with open(path, encoding="utf-8") as fh:
            record = json.load(fh)
    except FileNotFoundError:
        return "ready", path, False, "no ready file: the node is still starting (or failed)"
    except (OSError, ValueError, RecursionError) as exc:
        return "ready", path, False, f"unreadable: {exc}"
    if not isinstance(record, dict) or record.get("ready") is not True:
        return "ready", path, False, "not a ready file written by seedcore-boot (edited by hand?)"
    if record.get("pid") != pid:
        return "ready", path, False, f"left by pid {record.get('pid')!r}, not by this node's supervisor (pid {pid})"
    return "ready", path, True, "written by the supervisor once every check passed"


def is_ours(pid):
    """True when `pid` is a live seedcore-boot supervisor (guards against a recycled pid)."""
    try:
        cmd = " ".join(psutil.Process(pid).cmdline())
    except psutil.AccessDenied:
        # Alive, but whose we cannot tell (another user's, under hidepid): not ours to call stale and remove.
        return True
    except psutil.Error:  # gone, or a zombie: dead
        return False
    return "seedcore_boot" in cmd or "seedcore-boot" in cmd


def node_record(record):
    """A node file's record as write_node wrote it, or None when it is not one (edited by hand, another
    version's): pid, role, ports {name: port}, dashboard_host, serve."""
    if not isinstance(record, dict):
        return None
    pid, role, ports = record.get("pid"), record.get("role"), record.get("ports", {})
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0 or role not in ("head", "worker"):
        return None
    if not isinstance(ports, dict) or not all(isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool)
                                              and 1 <= v <= 65535 for k, v in ports.items()):
        return None
    if not isinstance(record.get("dashboard_host"), (str, type(None))) or \
            not isinstance(record.get("serve", False), bool):
        return None
    return {**record, "ports": ports}


def running_nodes(settings):
    """[(path, record)] of nodes started under this temp dir whose supervisor is alive; stale files go. A node
    file written in another PID namespace is neither (see pid_namespace)."""
    found, here = [], pid_namespace()
    for path in sorted(glob.glob(os.path.join(settings.state_dir(), "*.json"))):
        try:
            with open(path, encoding="utf-8") as fh:
                record = node_record(json.load(fh))
        except (OSError, ValueError, RecursionError):
            continue
        if record is None:
            continue  # not a node file we wrote: left alone, as an unreadable one
        if record.get("pidns", here) != here:
            continue  # a pid of another PID namespace means nothing here: neither this node's nor stale
        if is_ours(record["pid"]):
            found.append((path, record))
        else:
            remove(path)
    return found


def pid_namespace():
    """This process's PID namespace ("pid:[4026531836]"), or None where /proc does not say.

    A temp dir can be shared across PID namespaces: KubeRay's autoscaler sidecar mounts the head's /tmp/ray
    (an emptyDir) from the same image. Seen from there, the head's supervisor pid is another process (its
    own PID 1 is `ray kuberay-autoscaler`), and `seedcore-boot status` there (`kubectl exec -c autoscaler`,
    or the image's HEALTHCHECK where a runtime runs it) removed the head's node file as stale: the head's
    liveness probe failed from then on, a restart every 85 s (seen under the real KubeRay v1.6.2 when the
    test's node agent still ran the HEALTHCHECK, tests/e2e/kuberay_real/test_autoscaling.py)."""
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return None
