"""The one way a test skips: `need(condition, why)`, `need_module(name)`.

A test that cannot run here (no root, a tool or module missing, no IPv6 loopback) calls one of these instead of
pytest.skip / pytest.mark.skipif / pytest.importorskip. Under SEEDCORE_REQUIRE_ALL=1 (set by .ci/run) the
test fails instead of skipping, so a run that reports everything passed has run everything.
tests/unit/test_test_rules.py fails on any other skip in tests/.
"""

import importlib
import os

import pytest

REQUIRE_ALL = "SEEDCORE_REQUIRE_ALL"


def required():
    return os.environ.get(REQUIRE_ALL) == "1"


def need(condition, why):
    """Go on if `condition` holds; else skip with `why` (fail under SEEDCORE_REQUIRE_ALL=1)."""
    if condition:
        return
    if required():
        pytest.fail(f"required here ({REQUIRE_ALL}=1) but cannot run: {why}", pytrace=False)
    pytest.skip(why, allow_module_level=True)  # module level too: need_module at an import


def need_module(name, why=None):
    """The imported module `name`; skip without it (fail under SEEDCORE_REQUIRE_ALL=1)."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        need(False, why or f"needs the Python module {name} ({exc})")
