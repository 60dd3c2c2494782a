"""The rules the tests themselves keep, checked over tests/:

- No timing asserted (speed is measured in bench/, docs/benchmarks.md): no comparison against an elapsed time,
  and no process wait whose deadline is short enough to measure speed rather than catch a hang.
- One way to skip (tests/skips.py): no pytest.skip / skipif / importorskip anywhere else, so that
  SEEDCORE_REQUIRE_ALL=1 turns every skip into a failure.
"""

import ast
import os
import re
import subprocess
import sys
import textwrap

import pytest

from tests import REPO

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SKIPS = os.path.join(TESTS, "skips.py")
CLOCKS = {"monotonic", "time", "perf_counter", "monotonic_ns", "perf_counter_ns", "time_ns"}
ELAPSED_NAMES = re.compile(r"^(elapsed|took|duration|dt)$|_(elapsed|took|duration)$")
ORDER = (ast.Lt, ast.LtE, ast.Gt, ast.GtE)
WAITS = {"wait", "wait_empty"}  # a process's exit, a host's last process: (.., timeout) last
HANG_DEADLINE = 30  # seconds: a wait bounded below this measures speed (the waits here allow 30 s or more)


def _sources():
    for top, dirs, files in os.walk(TESTS):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(top, name)
                with open(path) as fh:
                    yield os.path.relpath(path, REPO), fh.read()


def _is_clock(node):
    """time.monotonic(), time.time(), perf_counter() ...: a call to a clock."""
    if not isinstance(node, ast.Call) or node.args or node.keywords:
        return False
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
    return name in CLOCKS


def _is_clock_difference(node):
    return isinstance(node, ast.BinOp) and isinstance(node.op, ast.Sub) and _is_clock(node.left)


def _name(node):
    return node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else None


def _constant(node):
    """The value of a number literal or arithmetic of literals (10 + 5), else None."""
    try:
        value = ast.literal_eval(node)
    except ValueError:
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mult)):
            left, right = _constant(node.left), _constant(node.right)
            if left is not None and right is not None:
                return left + right if isinstance(node.op, ast.Add) else left * right
        return None
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def timing_assertions(source, path="<test>", waits=True):
    """Each place in `source` that asserts a timing, as 'path:line: what'. `waits`: also short process waits
    (in test modules; the hosts' own clean-up may bound a kill's reaping tightly)."""
    tree = ast.parse(source)
    # Names that ever hold a clock difference (took = time.monotonic() - t) are elapsed times wherever compared.
    elapsed = {t.id for node in ast.walk(tree) if isinstance(node, ast.Assign) and _is_clock_difference(node.value)
               for t in node.targets if isinstance(t, ast.Name)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and any(isinstance(op, ORDER) for op in node.ops):
            for operand in [node.left, *node.comparators]:
                name = _name(operand)
                if _is_clock_difference(operand) or name in elapsed or (name and ELAPSED_NAMES.search(name)):
                    found.append(f"{path}:{node.lineno}: compares an elapsed time ({ast.unparse(node)})")
                    break
        elif waits and isinstance(node, ast.Call) and _name(node.func) in WAITS:
            bound = next((k.value for k in node.keywords if k.arg == "timeout"), node.args[-1] if node.args else None)
            value = None if bound is None else _constant(bound)
            if value is not None and value < HANG_DEADLINE:
                found.append(f"{path}:{node.lineno}: a {value} s deadline measures speed ({ast.unparse(node)}); "
                             f"give one only a hang reaches (>= {HANG_DEADLINE} s) and print the time")
    return found


def other_skips(source, path="<test>"):
    """Each skip in `source` that does not go through tests/skips.py."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and (node.attr == "skipTest" or node.attr in (
                "skip", "skipif", "importorskip") and ast.unparse(node.value).split(".")[0] in ("pytest", "unittest")):
            found.append(f"{path}:{node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, ast.ImportFrom) and node.module == "pytest" and \
                any(a.name in ("skip", "importorskip") for a in node.names):
            found.append(f"{path}:{node.lineno}: from pytest import {', '.join(a.name for a in node.names)}")
    return found


def test_no_timing_is_asserted_in_the_tests():
    found = [f for path, source in _sources()
             for f in timing_assertions(source, path, waits=os.path.basename(path).startswith("test_"))]
    assert not found, "timing asserted in tests (speed belongs in bench/; assert the exit code, the order of " \
        "events, or a deadline only a hang reaches, and print the time):\n" + "\n".join(found)


def test_every_skip_goes_through_tests_skips():
    found = [f for path, source in _sources() if path != os.path.relpath(SKIPS, REPO)
             for f in other_skips(source, path)]
    assert not found, "skips that SEEDCORE_REQUIRE_ALL=1 would not turn into failures; use tests.skips.need(" \
        "condition, why) or need_module(name):\n" + "\n".join(found)


# The timing assertions the suite had (issue 27), as they were written: the lint must catch each.
CAUGHT = {
    "test_head.py:171": "rc = proc.wait(timeout=5)  # the issue's bound",
    "test_faults.py:54": "rc = proc.wait(timeout=5)  # the orchestrator must see it promptly",
    "test_worker.py:130": "elapsed = time.monotonic() - t\nassert elapsed >= 5",
    "test_worker.py:135": "rc = worker.wait(timeout=10 + 5)",
    "test_faults.py:117": "assert wait_empty(host, 15) == []",
    "test_drain.py:133": "took = time.monotonic() - t0\nassert took < 45 + 8, took",
    "test_drain.py:169": "took = time.monotonic() - t0\nassert 3 <= took < 3 + 8, took",
    "test_tls.py:184": "took = time.monotonic() - t\nassert rc == 1 and took < OTHER_CA_WORKER_BOUND, x",
    "test_docker.py:153": "took = time.monotonic() - t\nassert took < 15, f'docker stop took {took:.1f} s'",
    "test_docker_tls.py:117": "assert inspect(HEAD, '{{.State.ExitCode}}') == '0' and time.monotonic() - t < 15",
    "test_kuberay.py:205": "took = time.monotonic() - t\nassert code == 0 and took < holder.plan.grace, (code, took)",
}


@pytest.mark.parametrize("where", sorted(CAUGHT))
def test_the_lint_catches_each_timing_assertion_the_suite_had(where):
    assert timing_assertions(CAUGHT[where]), where


def test_the_lint_lets_deadlines_and_printed_times_pass():
    fine = textwrap.dedent("""
        end = time.monotonic() + 120
        while time.monotonic() < end and not done():
            pass
        assert time.monotonic() < deadline, status
        t = time.monotonic()
        rc = proc.wait(timeout=120)
        took = time.monotonic() - t
        print(f"exit {rc} after {took:.1f} s")
        assert rc == 1 and head.ready_since is not None
        assert proc.wait(60) == 0
    """)
    assert timing_assertions(fine) == []


def test_the_lint_catches_each_kind_of_skip():
    for line in ("pytest.skip('x')", "pytest.importorskip('ray')", "@pytest.mark.skipif(True, reason='x')\ndef f(): pass",
                 "from pytest import skip", "self.skipTest('x')"):
        assert other_skips(line), line
    assert other_skips("need(ok, why)\nneed_module('ray')\nraycli.skip_dashboard_wait(a)") == []


TINY = """
from tests.skips import need, need_module

def test_needs_what_is_missing():
    need(False, "a tool this machine lacks")

def test_needs_a_module_that_is_missing():
    need_module("no_such_module_here")

def test_has_what_it_needs():
    need(True, "never said")
"""


@pytest.mark.parametrize("required", [False, True])
def test_require_all_turns_every_skip_into_a_failure(tmp_path, required):
    (tmp_path / "test_tiny.py").write_text(TINY)
    env = {k: v for k, v in os.environ.items() if k != "SEEDCORE_REQUIRE_ALL"}
    env["PYTHONPATH"] = REPO
    if required:
        env["SEEDCORE_REQUIRE_ALL"] = "1"
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rsf", "-p", "no:cacheprovider", "--rootdir",
                          str(tmp_path), str(tmp_path / "test_tiny.py")], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    if required:
        assert out.returncode == 1 and "2 failed, 1 passed" in out.stdout, out.stdout
        assert "required here (SEEDCORE_REQUIRE_ALL=1) but cannot run: a tool this machine lacks" in out.stdout
        assert "no_such_module_here" in out.stdout
    else:
        assert out.returncode == 0 and "1 passed, 2 skipped" in out.stdout, out.stdout
        assert "a tool this machine lacks" in out.stdout
