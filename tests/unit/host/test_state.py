"""The state dir: an unwritable temp dir is one line with the fix, not a traceback later."""

import os
import shutil
import tempfile

import pytest

from seedcore_boot.config.settings import resolve
from seedcore_boot.errors import BootError
from seedcore_boot.host import state
from tests.skips import need


def test_writable_temp_dir_passes_and_leaves_no_probe(tmp_path):
    s = resolve({"temp_dir": str(tmp_path / "ray")}, {}).settings
    state.check_writable(s, "head")
    assert sorted(os.listdir(tmp_path / "ray")) == ["seedcore-boot"]
    assert os.listdir(tmp_path / "ray" / "seedcore-boot") == []


@pytest.fixture
def locked():
    """A root-owned directory anyone can enter but only root can write, like a fresh Docker volume."""
    top = tempfile.mkdtemp(prefix="seedcore-state-", dir="/var/tmp")
    os.chmod(top, 0o755)
    try:
        yield top
    finally:
        shutil.rmtree(top)


def test_unwritable_temp_dir_names_owner_and_fix(locked):
    need(os.geteuid() == 0, "needs root, to become another uid")
    s = resolve({"temp_dir": os.path.join(locked, "ray")}, {}).settings
    pid = os.fork()
    if pid == 0:  # as another uid, the way the image's user meets a root-owned volume
        code = 3
        try:
            os.setresuid(65534, 65534, 65534)
            state.check_writable(s, "head")
        except BootError as exc:
            text = str(exc)
            ok = ("cannot write Ray's temp dir" in text and "Permission denied" in text and
                  f"{locked} is owned by uid 0, mode 755" in text and "--temp-dir" in text and exc.exit_code == 1)
            code = 0 if ok else 4
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_a_ready_file_counts_only_for_the_supervisor_that_wrote_it(tmp_path):
    """A ready file outlives a SIGKILL of its writer (docs/running.md: one left so does not count): status
    reads it for the live supervisor's pid, and a file of another pid is not ready."""
    s = resolve({"temp_dir": str(tmp_path / "ray")}, {}).settings
    os.makedirs(os.path.dirname(s.ready_path("head")))
    assert state.ready_row(s, "head", os.getpid())[2:] == (False, "no ready file: the node is still starting (or failed)")
    state.write_ready(s.ready_path("head"), {"gcs": "127.0.0.1:6379"})  # as the supervisor (this process) does
    assert state.ready_row(s, "head", os.getpid())[2] is True
    ok, detail = state.ready_row(s, "head", os.getpid() + 1)[2:]  # a later supervisor, after a SIGKILL
    assert not ok and f"left by pid {os.getpid()}, not by this node's supervisor" in detail
