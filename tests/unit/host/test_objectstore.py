"""The object store against /dev/shm: Ray 2.20's default rule, and what we decide when it does not fit."""

import pytest

from seedcore_boot.config.settings import resolve
from seedcore_boot.config.values import parse_bytes
from seedcore_boot.errors import BootError
from seedcore_boot.host import objectstore

GiB = 2**30


@pytest.mark.parametrize("text, value", [("2147483648", 2 * GiB), ("2gb", 2 * GiB), ("2G", 2 * GiB),
                                         ("1.5GiB", int(1.5 * GiB)), ("512mb", 512 * 2**20), ("64k", 65536)])
def test_bytes_take_dockers_units(text, value):
    assert parse_bytes(text) == value


@pytest.mark.parametrize("text", ["", "2 tb", "gb", "-1gb", "1e9"])
def test_bytes_refuse_what_they_cannot_read(text):
    assert parse_bytes(text) is None


def test_object_store_setting_refuses_less_than_rays_minimum():
    with pytest.raises(BootError) as err:
        resolve({}, {"SEEDCORE_BOOT_OBJECT_STORE_MEMORY": "64mb"})
    assert err.value.exit_code == 2 and "75 MiB" in str(err.value)


def test_rays_default_is_30_percent_capped_by_shm_only_above_10_gb():
    # 24 GB available, 2 GB of shm: Ray wants 7.2 GB (below its 10 GB threshold, so shm does not cap it).
    assert objectstore.ray_default(24 * 10**9, 2 * 10**9) == 7.2 * 10**9
    # 100 GB available, 20 GB of shm: 30 GB capped by shm * 0.95.
    assert objectstore.ray_default(100 * 10**9, 20 * 10**9) == 19 * 10**9
    # 100 GB available, 4 GB of shm: the cap cannot go below 10 GB.
    assert objectstore.ray_default(100 * 10**9, 4 * 10**9) == 10**10


def test_default_that_fits_is_left_to_ray():
    d = objectstore.decide(None, available=10 * 10**9, shm=12 * 10**9)
    assert d.size is None and d.level == "info" and "Ray's default" in d.message


def test_default_that_does_not_fit_is_sized_to_shm_with_the_fix():
    d = objectstore.decide(None, available=24 * 10**9, shm=2 * GiB)
    assert d.size == int(2 * GiB * 0.95) and d.level == "warning"
    assert "shm_size: 7.1gb" in d.message and "--shm-size=7.1gb" in d.message


def test_configured_size_that_does_not_fit_is_refused_not_shrunk():
    with pytest.raises(BootError) as err:
        objectstore.decide(4 * GiB, available=24 * 10**9, shm=2 * GiB)
    assert err.value.exit_code == 1 and "shm_size: 4.3gb" in str(err.value)
    assert objectstore.decide(GiB, available=24 * 10**9, shm=2 * GiB).size == GiB


def test_dockers_default_shm_is_refused():
    with pytest.raises(BootError) as err:
        objectstore.decide(None, available=24 * 10**9, shm=64 * 2**20)
    assert "75 MiB" in str(err.value) and "--shm-size=" in str(err.value)


def _tree(root, files):
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return str(root)


def test_available_memory_reads_a_cgroup_v1_limit(tmp_path):
    root = _tree(tmp_path, {"memory/memory.limit_in_bytes": f"{4 * GiB}\n",
                            "memory/memory.usage_in_bytes": f"{GiB + 300}\n",
                            "memory/memory.stat": "cache 5\ntotal_inactive_file 100\ntotal_active_file 200\n"})
    assert objectstore.available_memory(root, total=24 * GiB, used=10 * GiB) == 3 * GiB


def test_available_memory_reads_a_cgroup_v2_limit_and_max(tmp_path):
    stat = "anon 1\ninactive_file 10\nactive_file 20\n"
    limited = _tree(tmp_path / "a", {"memory.max": f"{2 * GiB}\n", "memory.current": f"{GiB + 30}\n",
                                     "memory.stat": stat})
    assert objectstore.available_memory(limited, total=24 * GiB, used=10 * GiB) == GiB
    unlimited = _tree(tmp_path / "b", {"memory.max": "max\n", "memory.current": f"{GiB + 30}\n",
                                       "memory.stat": stat})
    assert objectstore.available_memory(unlimited, total=24 * GiB, used=10 * GiB) == 23 * GiB


def test_without_cgroup_files_psutils_figures_count(tmp_path):
    assert objectstore.available_memory(str(tmp_path), total=24 * GiB, used=10 * GiB) == 14 * GiB


def test_a_plasma_directory_is_the_users_placement():
    s = resolve({"ray_args": ("--plasma-directory=/mnt/fast",)}, {}).settings
    settings, d = objectstore.fit(s, shm_path="/nonexistent")
    assert settings.object_store_memory is None and "--plasma-directory" in d.message
