"""cgroup v1 and v2 files as kernels, container runtimes and odd hosts leave them: the forms the kernel writes,
numbers at their limits, and any bytes at all; read by hostcheck (CPUs, memory) and objectstore (the object
store against the memory left)."""

import os
import shutil

from hypothesis import given, strategies as st

from seedcore_boot.config.settings import resolve
from seedcore_boot.host import hostcheck, objectstore
from tests.props import result_or_boot_error

FILES = ["cpu/cpu.cfs_quota_us", "cpu/cpu.cfs_period_us", "cpuset/cpuset.cpus", "cpu.max", "cpuset.cpus.effective",
         "memory/memory.limit_in_bytes", "memory/memory.stat", "memory/memory.usage_in_bytes", "memory.max",
         "memory.stat", "memory.current"]
number = st.one_of(st.integers(-2, 2**64).map(str), st.sampled_from(["max", "-1", "0", "nan", "inf", "1e400", "0.5",
                                                                        "9" * 5000, " 12 ", ""]))
kernel_like = st.one_of(
    number,
    st.tuples(number, number).map(" ".join),  # cpu.max: "QUOTA PERIOD" or "max PERIOD"
    st.lists(st.one_of(st.integers(0, 512).map(str), st.tuples(st.integers(0, 512), st.integers(0, 512))
                       .map(lambda r: f"{r[0]}-{r[1]}")), max_size=4).map(",".join),  # cpusets: "0-3,6"
    st.lists(st.tuples(st.sampled_from(["total_inactive_file", "total_active_file", "inactive_file", "active_file",
                                        "anon", ""]), number).map(" ".join), max_size=5).map("\n".join),  # memory.stat
)
content = st.one_of(kernel_like.map(str.encode), st.binary(max_size=30))
cgroup_files = st.dictionaries(st.sampled_from(FILES), content, max_size=len(FILES))


def make(root, files):
    shutil.rmtree(root)
    for sub in ("cpu", "cpuset", "memory"):
        os.makedirs(f"{root}/{sub}")
    for name, data in files.items():
        with open(f"{root}/{name}", "wb") as fh:
            fh.write(data)


@given(files=cgroup_files, machine=st.integers(1, 512), num_cpus=st.none() | st.integers(0, 64))
def test_any_cgroup_cpu_files_give_a_whole_number_of_cpus(scratch, files, machine, num_cpus):
    make(scratch, files)
    found = result_or_boot_error(hostcheck.cgroup_cpus, scratch)
    got = result_or_boot_error(hostcheck.cpus, num_cpus, found, machine)
    passed, decision = got
    assert passed is None or (isinstance(passed, int) and (passed >= 1 or passed == num_cpus))
    assert "\n" not in decision.message


@given(files=cgroup_files, total=st.integers(1, 2**50), used=st.integers(0, 2**50), shm=st.none() | st.integers(0, 2**40))
def test_any_cgroup_memory_files_give_a_memory_line_and_an_object_store(scratch, files, total, used, shm):
    make(scratch, files)
    decision = result_or_boot_error(hostcheck.memory, scratch, total)
    assert "\n" not in decision.message
    available = result_or_boot_error(objectstore.available_memory, scratch, total, used)
    assert isinstance(available, int)
    result_or_boot_error(objectstore.decide, None, available, shm)


@given(st.text(max_size=30))
def test_any_cpuset_list_is_a_count_or_none(text):
    n = hostcheck.cpuset_count(text)
    assert n is None or (isinstance(n, int) and n >= 1)


def test_the_object_store_fits_whatever_the_cgroup_says(scratch):
    make(scratch, {"memory.max": b"9" * 5000, "memory.stat": b"inactive_file x\n", "memory.current": b"\xff"})
    settings = resolve({}, {}).settings
    result_or_boot_error(objectstore.fit, settings, scratch, scratch)
