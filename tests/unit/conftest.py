"""Hypothesis for the property tests (tests/unit/test_props_*.py): the same examples on every run and every
machine (derandomize), none remembered between runs (no example database: nothing is written under
.hypothesis/, and .gitignore keeps it out anyway), a bounded number of examples and no per-example deadline
(CI's 2 cores are shared; a slow example is not a failure). SEEDCORE_HYPOTHESIS_PROFILE=long runs many more
examples, random ones, for a search by hand."""

import os

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
