import os
import sys

import pytest

from seedcore_boot.config.settings import resolve
from seedcore_boot.errors import BootError
from seedcore_boot.node import rayenv
from seedcore_boot.node.plan import dry_run_text, make_plan
from seedcore_boot.ray.raycmd import find_ray, head_argv, worker_argv
from tests.skips import need

SEED = {"RAY_DISABLE_METRICS_SERVER": "1", "RAY_METRICS_EXPORT_PORT": "8080", "RAY_DASHBOARD_METRICS_PORT": "8080"}


def test_head_argv_pins_every_port():
    argv = head_argv(resolve({}, {}).settings, "ray")
    assert argv[:6] == ["ray", "start", "--head", "--block", "--log-color=false", "--include-dashboard=true"]
    for flag in ("--port=6379", "--dashboard-host=127.0.0.1", "--dashboard-port=8265", "--dashboard-grpc-port=6384",
                 "--ray-client-server-port=10001", "--metrics-export-port=8080",
                 "--dashboard-agent-listen-port=52365", "--dashboard-agent-grpc-port=6383",
                 "--node-manager-port=6380", "--object-manager-port=6381", "--runtime-env-agent-port=6382",
                 "--min-worker-port=10002", "--max-worker-port=19999", "--temp-dir=/tmp/ray"):
        assert flag in argv
    assert not any(a.startswith(("--num-cpus", "--node-ip-address")) for a in argv)


def test_flags_reach_the_argv_and_extra_args_come_last():
    s = resolve({"num_cpus": "2", "node_ip_address": "10.1.2.3", "ray_args": ("--storage=/data",)}, {}).settings
    argv = head_argv(s, "ray")
    assert "--num-cpus=2" in argv and "--node-ip-address=10.1.2.3" in argv
    assert argv[-1] == "--storage=/data"


@pytest.mark.parametrize("arg", ["--port=1", "--block", "--dashboard-port", "--metrics-export-port=9",
                                 "--object-store-memory=100000000"])
def test_extra_args_may_not_override_managed_flags(arg):
    with pytest.raises(BootError) as err:
        head_argv(resolve({"ray_args": (arg,)}, {}).settings, "ray")
    assert err.value.exit_code == 2 and arg.split("=")[0] in str(err.value)


def test_seed_variables_become_rays_knobs():
    plan = make_plan(resolve({}, SEED), "head")
    assert "--metrics-export-port=8080" in plan.argv
    moved = plan.settings.dashboard_metrics_port
    assert moved not in (8080, 44227)
    assert plan.env_additions["DASHBOARD_METRIC_PORT"] == str(moved)
    assert plan.env_additions["AUTOSCALER_METRIC_PORT"] == str(plan.settings.autoscaler_metrics_port)
    assert any("configured 8080 from env RAY_DASHBOARD_METRICS_PORT is not used" in n for n in plan.notes)
    planned = [p.port for p in plan.ports]
    assert len(planned) == len(set(planned))


def test_child_env_keeps_users_variables_and_does_not_touch_the_base():
    base = dict(SEED, PATH="/bin")
    s = resolve({}, base).settings
    env = rayenv.child_env(s, "head", base)
    assert base == dict(SEED, PATH="/bin")
    assert {k: env[k] for k in SEED} == SEED
    assert env["DASHBOARD_METRIC_PORT"] == "8080"


def test_without_disable_the_export_and_dashboard_metrics_clash_is_refused():
    with pytest.raises(BootError) as err:
        make_plan(resolve({}, {"RAY_METRICS_EXPORT_PORT": "8080", "RAY_DASHBOARD_METRICS_PORT": "8080"}), "head")
    assert err.value.exit_code == 2
    assert "port 8080 is planned twice: metrics_export" in str(err.value) and "dashboard_metrics" in str(err.value)


def test_setting_for_another_role_is_reported_not_dropped():
    plan = make_plan(resolve({}, {"SEEDCORE_HEAD_ADDRESS": "10.0.0.1:6379"}), "head")
    assert any("head_address" in n and "ignored" in n for n in plan.notes)


def test_ray_command_prefix_reaches_both_argvs():
    launcher = ["/venv/bin/python3", "-m", "seedcore_boot.ray.raycli"]
    s = resolve({}, {}).settings
    assert head_argv(s, launcher)[:5] == launcher + ["start", "--head"]
    assert worker_argv(s, "10.0.0.1:6379", launcher)[:5] == launcher + ["start", "--address=10.0.0.1:6379"]


def test_find_ray_runs_our_cli_wrapper_when_ray_is_in_our_environment():
    need(os.path.isfile(os.path.join(os.path.dirname(sys.executable), "ray")), "ray is not installed beside this Python")
    assert find_ray() == [sys.executable, "-m", "seedcore_boot.ray.raycli"]


def test_ray_retry_defaults_yield_to_exported_values():
    s = resolve({}, {}).settings
    env = rayenv.child_env(s, "worker", {"RAY_raylet_client_connect_timeout_milliseconds": "1000"})
    assert env["RAY_raylet_client_connect_timeout_milliseconds"] == "1000"
    assert env["RAY_raylet_client_num_connect_attempts"] == "100"
    assert rayenv.child_env(s, "head", {})["RAY_raylet_client_connect_timeout_milliseconds"] == "100"
    assert "# unless exported" in dry_run_text(make_plan(resolve({}, {}), "head"))


def test_memory_resources_and_the_monitor_reach_the_argv():
    s = resolve({"memory": "4gb", "resources": '{"accel": 2}', "monitor": False}, {}).settings
    argv = head_argv(s)
    assert "--memory=4294967296" in argv and '--resources={"accel": 2}' in argv and "--no-monitor" in argv
    assert "--no-monitor" not in head_argv(resolve({}, {}).settings)
    for arg in ("--memory=1", "--resources={}", "--no-monitor"):
        with pytest.raises(BootError):
            head_argv(resolve({"ray_args": (arg,)}, {}).settings)


def test_without_the_monitor_there_is_no_autoscaler_to_expect_or_preflight():
    from seedcore_boot.host import ports
    from seedcore_boot.ray import components

    off = resolve({"monitor": False}, {}).settings
    assert "autoscaler_monitor" not in components.expected(off, "head")
    assert "autoscaler_metrics" not in {p.name for p in ports.plan(off, "head")}
    on = resolve({}, {}).settings
    assert "autoscaler_monitor" in components.expected(on, "head")


@pytest.mark.parametrize("raw", ["[1]", '{"a": -1}', '{"a": "x"}', "not json"])
def test_bad_resources_are_usage_errors(raw):
    with pytest.raises(BootError) as err:
        resolve({"resources": raw}, {})
    assert err.value.exit_code == 2 and "JSON mapping" in str(err.value)
