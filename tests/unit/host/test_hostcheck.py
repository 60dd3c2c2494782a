"""The host's checks: open files, CPUs from cgroup v1 and v2 fixture trees, session pruning, free space."""

import os
import resource

import pytest

from seedcore_boot.errors import BootError
from seedcore_boot.host import hostcheck

INF = resource.RLIM_INFINITY


def test_open_files_raised_to_65536_when_the_hard_limit_allows():
    target, d = hostcheck.nofile(1024, INF)
    assert target == 65536 and d.level == "info" and "1024 to 65536" in d.message
    target, d = hostcheck.nofile(1024, 1048576)
    assert target == 65536


def test_open_files_below_65536_hard_is_a_warning_with_the_fix():
    target, d = hostcheck.nofile(1024, 4096)
    assert target == 4096 and d.level == "warning" and "--ulimit nofile=65536:65536" in d.message
    target, d = hostcheck.nofile(4096, 4096)
    assert target is None and d.level == "warning"


def test_open_files_already_high_are_left():
    assert hostcheck.nofile(100000, INF)[0] is None


def _tree(root, files):
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return str(root)


@pytest.mark.parametrize("text, count", [("0-3", 4), ("0-3,6", 5), ("2", 1), ("0,2-3", 3), ("", None), ("x", None)])
def test_cpuset_lists(text, count):
    assert hostcheck.cpuset_count(text) == count


def test_cgroup_v1_quota_and_cpuset(tmp_path):
    root = _tree(tmp_path, {"cpu/cpu.cfs_quota_us": "150000\n", "cpu/cpu.cfs_period_us": "100000\n",
                            "cpuset/cpuset.cpus": "0-3\n"})
    found = hostcheck.cgroup_cpus(root)
    assert found == {"quota": 1.5, "cpuset_v1": 4, "cpuset_v2": None}
    # Ray truncates 1.5 to 1 as we do: nothing to pass, one line that says so.
    num, d = hostcheck.cpus(None, found, 8)
    assert num is None and "CPUs: 1" in d.message and "as Ray detects" in d.message


def test_cgroup_v1_unlimited_quota_is_no_limit(tmp_path):
    root = _tree(tmp_path, {"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"})
    assert hostcheck.cgroup_cpus(root)["quota"] is None


def test_cgroup_v2_cpuset_which_ray_misses(tmp_path):
    root = _tree(tmp_path, {"cpu.max": "max 100000\n", "cpuset.cpus.effective": "0-1\n"})
    found = hostcheck.cgroup_cpus(root)
    assert found == {"quota": None, "cpuset_v1": None, "cpuset_v2": 2}
    assert hostcheck.ray_cpus(found, 16) == 16
    num, d = hostcheck.cpus(None, found, 16)
    assert num == 2 and d.level == "warning" and "alone would advertise 16" in d.message


def test_half_a_cpu_is_one_not_zero(tmp_path):
    found = hostcheck.cgroup_cpus(_tree(tmp_path, {"cpu.max": "50000 100000\n"}))
    assert found["quota"] == 0.5 and hostcheck.ray_cpus(found, 8) == 0
    assert hostcheck.cpus(None, found, 8)[0] == 1


def test_num_cpus_given_wins():
    assert hostcheck.cpus(3, {"quota": 1.0, "cpuset_v1": None, "cpuset_v2": None}, 8)[0] == 3


def test_session_pruning_keeps_the_newest_and_never_a_live_one():
    entries = [("session_a", 1), ("session_b", 2), ("session_c", 3), ("session_d", 4), ("session_live", 0)]
    assert hostcheck.sessions_to_prune(entries, {"session_live"}, keep=2) == ["session_a", "session_b"]
    assert hostcheck.sessions_to_prune(entries, {"session_live"}, keep=0) == [
        "session_a", "session_b", "session_c", "session_d"]


def test_prune_removes_dirs_on_disk(tmp_path):
    for i, name in enumerate(["session_1", "session_2", "session_3"]):
        (tmp_path / name).mkdir()
        os.utime(tmp_path / name, (i, i))
    os.symlink(tmp_path / "session_1", tmp_path / "session_latest")  # the live one, though oldest
    d = hostcheck.prune_sessions(str(tmp_path), keep=1)
    assert sorted(os.listdir(tmp_path)) == ["session_1", "session_3", "session_latest"]
    assert d.size == 1


def test_a_nearly_full_temp_dir_is_refused(tmp_path):
    assert hostcheck.check_free(str(tmp_path / "ray"), minimum=1).level == "info"
    with pytest.raises(BootError) as err:
        hostcheck.check_free(str(tmp_path), minimum=2**62)
    assert "MiB free" in str(err.value) and "--temp-dir" in str(err.value)


def test_memory_line_reports_a_cgroup_limit(tmp_path):
    limited = _tree(tmp_path / "a", {"memory.max": f"{4 * 2**30}\n"})
    d = hostcheck.memory(limited, total=24 * 2**30)
    assert d.size == 4 * 2**30 and "cgroup limit 4.00 GiB" in d.message
    # cgroup v1 without a limit reports a huge number: no limit.
    unlimited = _tree(tmp_path / "b", {"memory/memory.limit_in_bytes": "9223372036854771712\n"})
    assert hostcheck.memory(unlimited, total=24 * 2**30).size is None
