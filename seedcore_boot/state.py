"""The files a running node leaves in <temp_dir>/seedcore-boot/: who we are (for `stop`, `status`) and
whether we are ready (for a container HEALTHCHECK)."""

import glob
import json
import os
import time

import psutil


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
    except FileNotFoundError:
        pass


def node_file(settings, role):
    # Named by the node manager port, which is unique per node on a host, so two workers can share a temp dir.
    return os.path.join(settings.state_dir(), f"{role}-{settings.node_manager_port}.json")


def write_node(settings, role, ports):
    path = node_file(settings, role)
    _write(path, {"pid": os.getpid(), "role": role, "started": time.time(), "temp_dir": settings.temp_dir,
                  "dashboard_host": settings.dashboard_host, "ports": ports})
    return path


def write_ready(path, endpoints):
    _write(path, {"ready": True, "pid": os.getpid(), "at": time.time(), "endpoints": endpoints})


def is_ours(pid):
    """True when `pid` is a live seedcore-boot supervisor (guards against a recycled pid)."""
    try:
        cmd = " ".join(psutil.Process(pid).cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False
    return "seedcore_boot" in cmd or "seedcore-boot" in cmd


def running_nodes(settings):
    """[(path, record)] of nodes started under this temp dir whose supervisor is alive; stale files go."""
    found = []
    for path in sorted(glob.glob(os.path.join(settings.state_dir(), "*.json"))):
        try:
            with open(path, encoding="utf-8") as fh:
                record = json.load(fh)
            pid = int(record["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if is_ours(pid):
            found.append((path, record))
        else:
            remove(path)
    return found
