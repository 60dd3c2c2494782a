"""The object store against /dev/shm, decided before Ray starts.

Ray 2.20 sizes the object store at 30% of available memory (resource_spec.py, ResourceSpec.resolve) and
caps that by /dev/shm only above 10 GB. Below it, a store larger than /dev/shm goes to /tmp with one
warning in a log ("This will harm performance!", services.py determine_plasma_store_config). In a
container that is the normal case: Docker gives /dev/shm 64 MB, compose files often 2 GB, while the
store wants 30% of the host. So:

- object_store_memory set and too big for /dev/shm: refuse, naming the shm size that would hold it
  (what the user asked for is not silently shrunk, nor put on disk);
- not set, and Ray's own default would not fit: size the store to what /dev/shm holds, with a warning
  naming the shm size for the full default (the node runs from memory, as Ray's own cap intends);
- /dev/shm below Ray's 75 MiB minimum: refuse (Docker's default 64 MB is one).

The memory figures follow Ray's own reading (utils.get_system_memory, get_used_memory): the cgroup's
limit and usage when there is one (v1 first, then v2), else psutil's.
"""

import dataclasses
import os

import psutil

from ..config.values import MIN_OBJECT_STORE
from ..errors import BootError

PROPORTION = 0.3                  # ray_constants.DEFAULT_OBJECT_STORE_MEMORY_PROPORTION
REQUIRE_SHM_SIZE_THRESHOLD = 10**10  # ray_constants: Ray caps its default by /dev/shm only above this
MAX_DEFAULT = 200 * 10**9         # ray_constants.DEFAULT_OBJECT_STORE_MAX_MEMORY_BYTES
SHM_WIGGLE = 0.95                 # Ray's own margin when it caps by /dev/shm (ray PR 23034)
CGROUP = "/sys/fs/cgroup"


def read_text(path):
    """A small kernel file's text, stripped; None when it is not there or not readable."""
    try:
        with open(path, encoding="ascii") as fh:
            return fh.read().strip()
    except (OSError, UnicodeDecodeError):
        return None


def memory_limit(cgroup=CGROUP):
    """The cgroup's memory limit as Ray reads it (utils.get_system_memory): v1's memory.limit_in_bytes when
    the file is there, else v2's memory.max; None without a number ("max", no cgroup)."""
    raw = read_text(os.path.join(cgroup, "memory", "memory.limit_in_bytes"))
    if raw is None:
        raw = read_text(os.path.join(cgroup, "memory.max"))
    # at most 20 digits: v1's "no limit" is 9223372036854771712; thousands of digits are no limit int() takes
    return int(raw) if raw and raw.isdigit() and len(raw) <= 20 else None


def _cgroup_used(stat_path, usage_path, inactive_key, active_key):
    stat, usage = read_text(stat_path), read_text(usage_path)
    if stat is None or usage is None:
        return None
    fields = dict(line.split()[:2] for line in stat.splitlines() if len(line.split()) >= 2)
    try:
        # As Ray (and memory_monitor.cc): usage minus the page cache the kernel can drop.
        return int(usage.split()[0]) - int(fields[inactive_key]) - int(fields[active_key])
    except (KeyError, ValueError, IndexError):
        return None


def available_memory(cgroup=CGROUP, total=None, used=None):
    """Ray's estimate_available_memory(): the system (or cgroup) limit minus what is in use."""
    vm = None if total is not None and used is not None else psutil.virtual_memory()
    total = vm.total if total is None else total
    limit = memory_limit(cgroup)
    system = min(limit, total) if limit is not None else total
    in_use = _cgroup_used(os.path.join(cgroup, "memory", "memory.stat"),
                          os.path.join(cgroup, "memory", "memory.usage_in_bytes"),
                          "total_inactive_file", "total_active_file")
    if in_use is None:
        in_use = _cgroup_used(os.path.join(cgroup, "memory.stat"), os.path.join(cgroup, "memory.current"),
                              "inactive_file", "active_file")
    if in_use is None:
        in_use = vm.used if used is None else used
    return system - in_use


def shm_free(path="/dev/shm"):
    """Bytes /dev/shm can still take (Ray's get_shared_memory_bytes), or None when there is none."""
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    return st.f_bsize * st.f_bavail


def ray_default(available, shm):
    """The size Ray 2.20 picks when none is given (ResourceSpec.resolve on Linux)."""
    cap = min(max(REQUIRE_SHM_SIZE_THRESHOLD, shm * SHM_WIGGLE), MAX_DEFAULT)
    return int(min(available * PROPORTION, cap))


def gb(n):
    return f"{n / 2**30:.2f} GiB"  # binary, as Docker's shm_size units


def docker_size(n):
    """A shm_size / --shm-size value that holds n bytes with Ray's 5% margin, rounded up to 0.1 GiB."""
    tenths = -(-n / SHM_WIGGLE // (2**30 / 10))
    return f"{tenths / 10:g}gb"


@dataclasses.dataclass(frozen=True)
class Decision:
    size: object    # bytes to pass as --object-store-memory, or None to leave Ray's default
    level: str      # "info" or "warning"
    message: str


def decide(configured, available, shm):
    """What to do about the object store; raises BootError when it cannot be held in /dev/shm."""
    if shm is None:
        return Decision(configured, "info", "no /dev/shm here: the object store is Ray's to place")
    fits = int(shm * SHM_WIGGLE)
    if configured is not None:
        if configured > shm:
            raise BootError(f"object_store_memory {gb(configured)} does not fit /dev/shm ({gb(shm)} free): Ray "
                            "would put the object store in /tmp, which harms performance",
                            f"give the container more shared memory (compose shm_size: {docker_size(configured)}"
                            f", docker run --shm-size={docker_size(configured)}) or lower object_store_memory "
                            f"to at most {fits}")
        return Decision(configured, "info", f"object store {gb(configured)} in /dev/shm ({gb(shm)} free)")
    default = ray_default(available, shm)
    if default <= fits:
        return Decision(None, "info", f"object store {gb(default)} (Ray's default, 30% of available memory) "
                        f"in /dev/shm ({gb(shm)} free)")
    if fits < MIN_OBJECT_STORE:
        raise BootError(f"/dev/shm has {gb(shm)} free, below Ray's smallest object store (75 MiB): Ray would "
                        "put the object store in /tmp, which harms performance",
                        f"give the container more shared memory (compose shm_size: {docker_size(default)}, "
                        f"docker run --shm-size={docker_size(default)}); Docker's default is 64 MB")
    return Decision(fits, "warning", f"object store sized to {gb(fits)} to fit /dev/shm ({gb(shm)} free); "
                    f"Ray's default here is {gb(default)}, which would have gone to /tmp and harmed performance. "
                    f"For the full size give the container more shared memory (compose shm_size: "
                    f"{docker_size(default)}, docker run --shm-size={docker_size(default)}), or set "
                    "object_store_memory to silence this")


def fit(settings, shm_path="/dev/shm", cgroup=CGROUP):
    """(settings with the object store decided, Decision). A --plasma-directory in ray_args is the user's
    own placement: then nothing is checked."""
    if any(a.split("=", 1)[0] == "--plasma-directory" for a in settings.ray_args):
        return settings, Decision(None, "info", "--plasma-directory given: object store placement not checked")
    decision = decide(settings.object_store_memory, available_memory(cgroup), shm_free(shm_path))
    return dataclasses.replace(settings, object_store_memory=decision.size), decision
