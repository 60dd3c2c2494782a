"""Hypothesis for the property tests (tests/unit/test_props_*.py): the same examples on every run and every
machine (derandomize), none remembered between runs (no example database: nothing is written under
.hypothesis/, and .gitignore keeps it out anyway), a bounded number of examples and no per-example deadline
(CI's 2 cores are shared; a slow example is not a failure). SEEDCORE_HYPOTHESIS_PROFILE=long runs many more
examples, random ones, for a search by hand."""

import os
import socket

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("ci", derandomize=True, database=None, max_examples=100, deadline=None,
                          print_blob=False, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("long", derandomize=False, database=None, max_examples=5000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("SEEDCORE_HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    """A directory for one property test module's files. Hypothesis runs every example inside one call of the
    test, so a function's tmp_path would be shared by the examples anyway (and Hypothesis refuses it)."""
    return str(tmp_path_factory.mktemp("props"))


@pytest.fixture
def own_node_env(tmp_path):
    """The environment for a real `seedcore-boot head --dry-run` in a unit test, whose host checks then pass on
    any machine, a developer's running a Ray head of its own among them: a temp dir of the test's own, and
    every port the head's preflight checks (host.ports.plan) pinned to one that is free now, not Ray's
    defaults, which a running Ray holds (the dashboard's 8265 failed these tests on such a machine)."""
    from seedcore_boot.config.settings import resolve
    from seedcore_boot.host import ports

    names = [p.setting for p in ports.plan(resolve({}, {}).settings, "head")]
    held = []
    try:
        for _ in names:  # all bound at once: distinct ports
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            held.append(s)
            s.bind(("", 0))
        env = {f"SEEDCORE_BOOT_{name.upper()}": str(s.getsockname()[1]) for name, s in zip(names, held)}
    finally:
        for s in held:
            s.close()
    env["SEEDCORE_BOOT_TEMP_DIR"] = str(tmp_path / "ray")
    return env
