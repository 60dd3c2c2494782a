"""The command line as a user meets it: real `python -m seedcore_boot` processes, nothing started."""

import json
import os
import subprocess
import sys

import pytest


def boot(*args, env=None):
    full = {k: v for k, v in os.environ.items() if not k.startswith(("SEEDCORE_", "RAY_", "DASHBOARD_", "AUTOSCALER_"))}
    full.update(env or {})
    return subprocess.run([sys.executable, "-m", "seedcore_boot", *args], capture_output=True, text=True,
                          env=full, timeout=60)


def test_dry_run_prints_argv_and_env_and_starts_nothing(own_node_env):
    env = dict(own_node_env)
    gcs, metrics = env.pop("SEEDCORE_BOOT_GCS_PORT"), env.pop("SEEDCORE_BOOT_METRICS_EXPORT_PORT")
    del env["SEEDCORE_BOOT_DASHBOARD_METRICS_PORT"]  # the seed's variables below set it (and it is set aside)
    r = boot("head", "--dry-run", "--port", gcs, "--num-cpus", "2", "--object-store-memory", "100mb",
             "--resources", '{"accel": 1}', "--", "--storage=/data/storage",
             env={**env, "RAY_DISABLE_METRICS_SERVER": "1", "RAY_METRICS_EXPORT_PORT": metrics,
                  "RAY_DASHBOARD_METRICS_PORT": metrics})
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    argv = lines[1]
    assert " start --head --block " in argv and f"--port={gcs}" in argv and "--num-cpus=2" in argv
    assert f"--metrics-export-port={metrics}" in argv and "--object-store-memory=104857600" in argv
    assert "'--resources={\"accel\": 1}'" in argv and argv.endswith("--storage=/data/storage")
    assert any(l.startswith("DASHBOARD_METRIC_PORT=") and l != f"DASHBOARD_METRIC_PORT={metrics}" for l in lines)
    assert "RAY_DASHBOARD_METRICS_PORT" in r.stdout  # the note that says the value was set aside


def test_config_show_names_the_source_of_each_value(tmp_path):
    cfg = tmp_path / "b.yaml"
    cfg.write_text("dashboard_port: 9100\n")
    r = boot("config", "show", "--json", "--config", str(cfg), "--client-port", "9300",
             env={"SEEDCORE_BOOT_GCS_PORT": "7000"})
    assert r.returncode == 0, r.stderr
    shown = json.loads(r.stdout)
    assert shown["dashboard_port"] == {"value": 9100, "source": f"file {cfg}"}
    assert shown["gcs_port"] == {"value": 7000, "source": "env SEEDCORE_BOOT_GCS_PORT"}
    assert shown["client_port"] == {"value": 9300, "source": "flag"}
    assert shown["metrics_export_port"] == {"value": 8080, "source": "default"}


@pytest.mark.parametrize("args,env,needle", [
    (["head", "--dry-run", "--port", "x"], {}, "bad value 'x' for gcs_port"),
    (["head", "--dry-run"], {"RAY_METRICS_EXPORT_PORT": "8080", "RAY_DASHBOARD_METRICS_PORT": "8080"},
     "planned twice"),
    (["head", "--dry-run", "--", "--port=1"], {}, "managed by seedcore-boot"),
    (["head", "--dashbord-port", "1"], {}, "No such option"),
])
def test_usage_errors_exit_2_with_one_line(args, env, needle):
    r = boot(*args, env=env)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert needle in r.stderr and "Traceback" not in r.stderr


def test_typo_in_settings_file_is_one_line_with_the_fix(tmp_path):
    cfg = tmp_path / "b.yaml"
    cfg.write_text("metrics_export_prot: 9000\n")
    r = boot("config", "show", "--config", str(cfg))
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "did you mean 'metrics_export_port'" in r.stderr


def test_help_lists_the_environment_variables():
    r = boot("head", "--help")
    assert r.returncode == 0
    for var in ("RAY_DISABLE_METRICS_SERVER", "RAY_METRICS_EXPORT_PORT", "RAY_DASHBOARD_METRICS_PORT",
                "DASHBOARD_METRIC_PORT", "SEEDCORE_BOOT_CONFIG", "SEEDCORE_BOOT_GCS_PORT"):
        assert var in r.stdout


def test_status_never_imports_ray(tmp_path):
    """It runs every few seconds as a probe: importing ray would cost a second and much memory each time."""
    code = ("import sys\nfrom seedcore_boot import cli\ntry:\n    cli.main(['status', '--temp-dir', sys.argv[1]])\n"
            "except SystemExit as e:\n    print(e.code, sorted(m for m in sys.modules if m.split('.')[0] == 'ray'))\n")
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert r.stdout.strip().splitlines()[-1] == "1 []", r.stdout + r.stderr
