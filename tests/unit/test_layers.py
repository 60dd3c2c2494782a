"""The layer rule of seedcore_boot/ (docs/development.md; the contracts are setup.cfg's [importlinter] sections):
`lint-imports` keeps every contract, and an import against them breaks it, so the check can fail."""

import os
import shutil
import subprocess
import sys

from tests import REPO

LINT_IMPORTS = os.path.join(os.path.dirname(sys.executable), "lint-imports")  # import-linter, of the [test] extra


def lint_imports(root):
    """lint-imports with the repository's contracts, on the seedcore_boot package found first under root."""
    env = dict(os.environ, PYTHONPATH=root)
    return subprocess.run([LINT_IMPORTS, os.path.join(REPO, "setup.cfg"), "--no-cache"], cwd=root,
                          env=env, capture_output=True, text=True, timeout=600)


def test_every_contract_is_kept():
    r = lint_imports(REPO)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "0 broken" in r.stdout, r.stdout


def test_an_import_against_the_layers_or_a_cycle_breaks_a_contract(tmp_path):
    package = tmp_path / "seedcore_boot"
    shutil.copytree(os.path.join(REPO, "seedcore_boot"), package, ignore=shutil.ignore_patterns("__pycache__"))
    with open(package / "config" / "values.py", "a", encoding="utf-8") as fh:
        fh.write("\nfrom ..node import flow  # noqa: E402,F401  config is below node\n")
    with open(package / "host" / "state.py", "a", encoding="utf-8") as fh:
        fh.write("\nfrom . import leftovers  # noqa: E402,F401  leftovers imports state: a cycle\n")
    r = lint_imports(str(tmp_path))
    assert r.returncode == 1, r.stdout + r.stderr
    assert "seedcore_boot.config is not allowed to import seedcore_boot.node" in r.stdout, r.stdout
    assert "No cycles are allowed in seedcore_boot.host" in r.stdout and ".state -> .leftovers" in r.stdout, r.stdout
