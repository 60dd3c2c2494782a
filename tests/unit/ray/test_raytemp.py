"""A worker's temp dir is its head's (raytemp.py): the pure parts. The GCS read itself is exercised against
a real head in tests/e2e/test_host_shapes.py."""

import pytest

from seedcore_boot.config.settings import resolve
from seedcore_boot.errors import BootError
from seedcore_boot.node.plan import make_plan
from seedcore_boot.ray import raytemp
from seedcore_boot.ray.raycmd import head_argv, worker_argv


def test_the_heads_entry_is_a_normalised_absolute_path():
    assert raytemp.parse(b"/data/ray/", "10.0.0.1:6379") == "/data/ray"


@pytest.mark.parametrize("value", [b"relative/ray", b"\xff\xfe/", b"/a\x00b", b" "])
def test_an_entry_no_worker_could_use_is_one_error(value):
    with pytest.raises(BootError, match="not an absolute path"):
        raytemp.parse(value, "10.0.0.1:6379")


def test_the_worker_says_when_its_setting_is_ignored_and_where_its_own_files_stay():
    s = resolve({}, {}).settings
    level, line = raytemp.worker_line(s, "/data/ray")
    assert level == "warning"
    assert "temp_dir /tmp/ray is ignored by Ray on a worker" in line and "its head's temp dir, /data/ray" in line
    assert "seedcore-boot's own files stay in /tmp/ray/seedcore-boot" in line
    assert raytemp.worker_line(resolve({"temp_dir": "/data/ray/"}, {}).settings, "/data/ray")[0] == "info"


def test_only_a_head_is_given_temp_dir():
    s = resolve({"temp_dir": "/data/ray"}, {}).settings
    assert "--temp-dir=/data/ray" in head_argv(s, "ray")
    assert not any(a.startswith("--temp-dir") for a in worker_argv(s, "10.0.0.1:6379", "ray"))


def test_a_workers_plan_defers_its_temp_dir_check_to_the_head():
    plan = make_plan(resolve({"head_address": "10.0.0.1:6379"}, {}, role="worker"), "worker",
                     address="10.0.0.1:6379", ray="ray")
    lines = [d.message for d in plan.host]
    assert not any(l.startswith("temp dir /tmp/ray:") for l in lines)
    assert any("a worker's Ray uses its head's temp dir" in l for l in lines)
    head = make_plan(resolve({}, {}), "head", ray="ray")
    assert any(d.message.startswith("temp dir /tmp/ray:") for d in head.host)
