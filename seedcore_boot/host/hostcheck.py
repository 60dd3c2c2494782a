"""The host's checks before `ray start`, the ones users of Ray in containers keep tripping over: open files,
CPUs from the cgroup, old session directories and a nearly full temp dir. (The object store against
/dev/shm is objectstore.py.) Each check is a pure function of what it reads, and says what it decided in one
line (a Decision) that the run logs and `--dry-run` prints.
"""

import dataclasses
import math
import os
import re
import resource
import shutil

import psutil

from ..errors import BootError
from . import objectstore
from .objectstore import CGROUP, Decision, read_text

NOFILE_WANTED = 65536  # what KubeRay sets with `ulimit -n` before every `ray start` (ray#29696)
MIN_FREE = 512 * 2**20  # a temp dir with less than this free cannot hold a node's logs for long


# --- open files -------------------------------------------------------------------------------------
def nofile(soft, hard, wanted=NOFILE_WANTED):
    """(soft limit to set for Ray, or None to leave it, Decision)."""
    target = wanted if hard == resource.RLIM_INFINITY else min(hard, wanted)
    short = target < wanted
    fix = (f"; the hard limit {hard} keeps it below {wanted}, which Ray wants for its workers and connections: "
           f"raise it (docker run --ulimit nofile={wanted}:{wanted}, compose `ulimits: nofile: {wanted}`, "
           f"systemd LimitNOFILE={wanted})") if short else ""
    if soft >= target:
        return None, Decision(None, "warning" if short else "info", f"open files: soft limit {soft}{fix}")
    return target, Decision(target, "warning" if short else "info",
                            f"open files: soft limit raised from {soft} to {target} for Ray{fix}")


def raise_nofile(target):
    """Raise our own soft limit (the child inherits it) before Ray starts."""
    if target is not None:
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


# --- CPUs from the cgroup -----------------------------------------------------------------------------
def cpuset_count(text):
    """Number of CPUs in a cpuset list such as "0-3,6"; None when empty or unreadable."""
    if not text:
        return None
    n = 0
    for part in text.split(","):
        lo, _, hi = part.strip().partition("-")
        if not _digits(lo) or (hi and (not _digits(hi) or int(hi) < int(lo))):
            return None  # "3-1" is no range the kernel writes: not a count to trust
        n += int(hi) - int(lo) + 1 if hi else 1
    return n or None


def _digits(text):
    return text.isascii() and text.isdigit() and len(text) < 20


def cgroup_cpus(root=CGROUP):
    """What the cgroup allows: {"quota": float|None, "cpuset_v1": int|None, "cpuset_v2": int|None}."""
    quota = None
    q, p = read_text(f"{root}/cpu/cpu.cfs_quota_us"), read_text(f"{root}/cpu/cpu.cfs_period_us")
    if q is not None and p is not None:
        try:
            quota = float(q) / float(p) if float(q) > 0 and float(p) > 0 else None
        except (ValueError, ZeroDivisionError, OverflowError):
            quota = None
    else:
        m = re.fullmatch(r"([0-9]{1,19}) ([0-9]{1,19})", read_text(f"{root}/cpu.max") or "")
        quota = int(m.group(1)) / int(m.group(2)) if m and int(m.group(2)) else None
    if quota is not None and not (math.isfinite(quota) and quota > 0):
        quota = None  # "nan", "inf" or "1e400" from float(): no limit anyone set
    return {"quota": quota, "cpuset_v1": cpuset_count(read_text(f"{root}/cpuset/cpuset.cpus")),
            "cpuset_v2": cpuset_count(read_text(f"{root}/cpuset.cpus.effective"))}


def ray_cpus(found, machine):
    """What Ray 2.20 advertises (utils.get_num_cpus, _get_docker_cpus): the quota (0 rounds up to 1) and the
    v1 cpuset only, then truncated to a whole number, so 0.5 CPUs become 0."""
    quota, cpuset = found["quota"], found["cpuset_v1"]
    docker = min(quota, cpuset) if quota and cpuset else (quota or cpuset)
    return int(docker) if docker is not None and docker != machine else machine


def cpus(num_cpus, found, machine):
    """(num_cpus to pass, or None, Decision): what the cgroup allows, in whole CPUs, never 0."""
    if num_cpus is not None:
        return num_cpus, Decision(num_cpus, "info", f"CPUs: {num_cpus} (num_cpus is set)")
    limits = [v for v in (found["quota"], found["cpuset_v1"], found["cpuset_v2"], machine) if v]
    allowed = min(limits)
    ours = max(1, math.floor(allowed))
    ray = ray_cpus(found, machine)
    why = ", ".join(f"{k} {v:g}" for k, v in found.items() if v) or "no cgroup limit"
    if ours == ray:
        return None, Decision(None, "info", f"CPUs: {ours} ({why}; machine {machine}), as Ray detects")
    return ours, Decision(ours, "warning", f"CPUs: advertising {ours}, what the cgroup allows ({why}; machine "
                          f"{machine}); Ray 2.20 alone would advertise {ray} (it reads neither the cgroup v2 "
                          "cpuset nor fractions below one CPU); set num_cpus to choose")


def memory(cgroup=CGROUP, total=None):
    """A line about the memory limit: Ray 2.20 reads the cgroup's (v1 or v2) itself, so this only reports."""
    total = psutil.virtual_memory().total if total is None else total
    limit = objectstore.memory_limit(cgroup)
    if limit is None or limit >= total:  # v1 says "no limit" with a huge number
        return Decision(None, "info", f"memory: {total / 2**30:.1f} GiB, no cgroup limit")
    return Decision(limit, "info", f"memory: cgroup limit {limit / 2**30:.2f} GiB of the machine's "
                    f"{total / 2**30:.1f} GiB (Ray reads the limit itself)")


# --- the temp dir -----------------------------------------------------------------------------------
def live_sessions(temp_dir):
    """Session dirs in use: session_latest's target and any named on a running process's command line."""
    live = set()
    latest = os.path.join(temp_dir, "session_latest")
    if os.path.islink(latest):
        live.add(os.path.basename(os.path.realpath(latest)))
    pattern = re.compile(re.escape(temp_dir.rstrip("/")) + r"/(session_[\w.-]+)")
    for proc in psutil.process_iter(["cmdline"]):
        for arg in proc.info["cmdline"] or ():
            live.update(pattern.findall(arg))
    return live


def sessions_to_prune(names_mtimes, live, keep):
    """The old session dirs beyond the `keep` newest, never a live one. names_mtimes: [(name, mtime)]."""
    old = sorted(((m, n) for n, m in names_mtimes if n not in live), reverse=True)
    return sorted(n for _, n in old[keep:])


def prune_sessions(temp_dir, keep):
    """Remove old session_* dirs beyond `keep`; returns a Decision (None when there is nothing to say)."""
    try:
        entries = [(e.name, e.stat(follow_symlinks=False).st_mtime) for e in os.scandir(temp_dir)
                   if e.name.startswith("session_") and e.name != "session_latest" and e.is_dir(follow_symlinks=False)]
    except OSError:
        return None
    doomed = sessions_to_prune(entries, live_sessions(temp_dir), keep)
    for name in doomed:
        shutil.rmtree(os.path.join(temp_dir, name), ignore_errors=True)
    if doomed:
        return Decision(len(doomed), "info", f"removed {len(doomed)} old session dir(s) from {temp_dir}, keeping "
                        f"the {keep} newest (keep_sessions)")
    return None


_FREE_FIX = ("free space there (old session_* dirs are safe to remove), lower keep_sessions, or set temp_dir "
             "(--temp-dir) to a larger filesystem")


def check_free(temp_dir, minimum=MIN_FREE, fix=_FREE_FIX):
    """Refuse a temp dir whose filesystem is nearly full: Ray would fail later, half started."""
    path = temp_dir
    while path and not os.path.exists(path):
        path = os.path.dirname(path)
    st = os.statvfs(path or "/")
    free = st.f_bavail * st.f_frsize
    if free < minimum:
        raise BootError(f"the temp dir {temp_dir} has {free / 2**20:.0f} MiB free (below {minimum / 2**20:.0f} "
                        "MiB): Ray's logs and spilled objects would fill it", fix)
    return Decision(free, "info", f"temp dir {temp_dir}: {free / 2**30:.1f} GiB free")


# --- all of them -------------------------------------------------------------------------------------
def checks(settings, role="head"):
    """Every check that decides something before `ray start`: (settings with the decisions, their Decisions
    for the log and --dry-run, the open-files soft limit to set or None). Not a worker's temp dir: that is its
    head's, checked once the head answers (raytemp.py)."""
    settings, store = objectstore.fit(settings)
    nofile_target, open_files = nofile(*resource.getrlimit(resource.RLIMIT_NOFILE))
    num_cpus, cpu_line = cpus(settings.num_cpus, cgroup_cpus(), os.cpu_count())
    settings = dataclasses.replace(settings, num_cpus=num_cpus)
    temp = [check_free(settings.temp_dir)] if role == "head" else []
    return settings, [store, open_files, cpu_line, memory(), *temp], nofile_target
