"""The names users and running clusters depend on, wherever the code behind them lives (#26): each is used here
the way its user uses it, in a fresh process (the console script, `python -m seedcore_boot`, `python -m bench`,
`python -m seedcore_boot.docgen`, the sample app's import path in Serve configs, and the worker setup hook's
path, which heads of every version hand to Ray)."""

import os
import subprocess
import sys
from importlib import metadata

import yaml

from seedcore_boot import cli
from seedcore_boot.serve import config as serve_config, servedrain
from tests import REPO

# The paths as users and older heads wrote them: literal, so that a move cannot change them with the code.
SAMPLE_APP = "seedcore_boot.ml_app:app"
SETUP_HOOK = "seedcore_boot.servedrain.install"


def run(*argv):
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=REPO)


def test_the_console_script_runs_the_cli():
    script, = [e for e in metadata.entry_points(group="console_scripts") if e.name == "seedcore-boot"]
    assert script.value == "seedcore_boot.cli:main" and script.load() is cli.main
    r = run(os.path.join(os.path.dirname(sys.executable), "seedcore-boot"), "--help")
    assert r.returncode == 0 and r.stdout.startswith("Usage: seedcore-boot"), r.stdout + r.stderr


def test_python_m_seedcore_boot_and_its_docgen():
    r = run(sys.executable, "-m", "seedcore_boot", "--help")
    assert r.returncode == 0 and "Commands:" in r.stdout and "head" in r.stdout, r.stdout + r.stderr
    r = run(sys.executable, "-m", "seedcore_boot.docgen")
    with open(os.path.join(REPO, "docs", "configuration.md"), encoding="utf-8") as fh:
        assert r.returncode == 0 and r.stdout == fh.read(), r.stderr


def test_python_m_bench():
    r = run(sys.executable, "-m", "bench", "--help")
    assert r.returncode == 0 and r.stdout.startswith("usage: python -m bench"), r.stdout + r.stderr


def test_the_sample_apps_import_path_resolves_as_serve_resolves_it():
    assert serve_config.OUR_APP == SAMPLE_APP
    with open(serve_config.DEFAULT_CONFIG, encoding="utf-8") as fh:
        assert {a["import_path"] for a in yaml.safe_load(fh)["applications"]} == {SAMPLE_APP}
    # Serve builds an app from its import_path with ray._private.utils.import_attr (serve/_private/api.py).
    # The app's classes live in that very module (not re-exported from another): Serve pickles a deployment's
    # class by module path, and a replica on a worker of an older seedcore-boot knows only this one.
    code = ("from ray._private.utils import import_attr\nfrom ray.serve.deployment import Application\n"
            f"app = import_attr({SAMPLE_APP!r})\n"
            "assert isinstance(app, Application), app\n"
            "mro = app._get_internal_dag_node()._body.__mro__\n"
            "ours = [c.__module__ for c in mro if c.__module__.startswith('seedcore_boot')]\n"
            "assert ours == ['seedcore_boot.ml_app'], mro\nprint('resolved')")
    r = run(sys.executable, "-c", code)
    assert r.returncode == 0 and r.stdout.strip() == "resolved", r.stdout + r.stderr


def test_the_worker_setup_hook_path_loads_and_runs_as_ray_runs_it():
    assert servedrain.HOOK == SETUP_HOOK  # what this head hands to Ray; older heads hand the same
    # A worker runs the hook named in its environment with this function of Ray's (default_worker.py).
    code = ("from ray._private.runtime_env.setup_hook import load_and_execute_setup_hook\n"
            f"error = load_and_execute_setup_hook({SETUP_HOOK!r})\nassert error is None, error\n"
            "import sys\nfrom seedcore_boot.serve import servedrain\n"
            "assert sys.modules['seedcore_boot.servedrain'].install is servedrain.install\nprint('ran')")
    r = run(sys.executable, "-c", code)
    assert r.returncode == 0 and r.stdout.strip() == "ran", r.stdout + r.stderr
