import pytest

from seedcore_boot.config.fields import DEFAULTS
from seedcore_boot.config.settings import resolve
from seedcore_boot.errors import BootError


def write(tmp_path, text, name="boot.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_each_layer_wins_over_the_one_below(tmp_path):
    cfg = write(tmp_path, "dashboard_port: 9001\nclient_port: 9002\nnum_cpus: 3\n")
    env = {"SEEDCORE_BOOT_CLIENT_PORT": "9102", "SEEDCORE_BOOT_NUM_CPUS": "4"}
    r = resolve({"num_cpus": "5"}, env, cfg)
    s = r.settings
    assert (s.gcs_port, r.sources["gcs_port"]) == (6379, "default")
    assert (s.dashboard_port, r.sources["dashboard_port"]) == (9001, f"file {cfg}")
    assert (s.client_port, r.sources["client_port"]) == (9102, "env SEEDCORE_BOOT_CLIENT_PORT")
    assert (s.num_cpus, r.sources["num_cpus"]) == (5, "flag")


def test_config_file_from_environment(tmp_path):
    cfg = write(tmp_path, "gcs_port: 7000\n")
    assert resolve({}, {"SEEDCORE_BOOT_CONFIG": cfg}).settings.gcs_port == 7000


def test_typo_in_file_names_the_intended_key(tmp_path):
    cfg = write(tmp_path, "dashbord_port: 9000\n")
    with pytest.raises(BootError) as err:
        resolve({}, {}, cfg)
    assert err.value.exit_code == 2
    assert "'dashbord_port'" in str(err.value) and "did you mean 'dashboard_port'" in str(err.value)


def test_unknown_key_without_a_close_match(tmp_path):
    with pytest.raises(BootError) as err:
        resolve({}, {}, write(tmp_path, "zzz: 1\n"))
    assert "config show" in str(err.value)


@pytest.mark.parametrize("key,value,why", [
    ("gcs_port", "70000", "1-65535"), ("gcs_port", "abc", "whole number"), ("num_cpus", "-1", "negative"),
    ("ready_timeout", "soon", "seconds"), ("temp_dir", "relative/dir", "absolute"),
    ("node_ip_address", "10.0.0", "IP address"), ("log_format", "xml", "text, json"),
    ("serve", "maybe", "true/false"),
])
def test_bad_values_are_usage_errors(key, value, why):
    with pytest.raises(BootError) as err:
        resolve({key: value}, {})
    assert err.value.exit_code == 2 and why in str(err.value) and key in str(err.value)


def test_yaml_syntax_error_has_line_number(tmp_path):
    cfg = write(tmp_path, "gcs_port: 6379\ndashboard_port: [8265\nclient_port: 1\n")
    with pytest.raises(BootError) as err:
        resolve({}, {}, cfg)
    assert "line 3" in str(err.value) and err.value.exit_code == 2


def test_seed_variables_are_our_inputs():
    env = {"RAY_DISABLE_METRICS_SERVER": "1", "RAY_METRICS_EXPORT_PORT": "8080", "RAY_DASHBOARD_METRICS_PORT": "8080"}
    r = resolve({}, env)
    assert r.settings.disable_metrics_server is True
    assert r.settings.metrics_export_port == 8080 and r.settings.dashboard_metrics_port == 8080
    assert r.sources["dashboard_metrics_port"] == "env RAY_DASHBOARD_METRICS_PORT"


def test_rays_own_variable_is_honoured_and_conflicts_are_refused():
    assert resolve({}, {"DASHBOARD_METRIC_PORT": "45000"}).settings.dashboard_metrics_port == 45000
    assert resolve({}, {"DASHBOARD_METRIC_PORT": "45000", "RAY_DASHBOARD_METRICS_PORT": "45000"}).settings \
        .dashboard_metrics_port == 45000
    with pytest.raises(BootError) as err:
        resolve({}, {"DASHBOARD_METRIC_PORT": "45000", "RAY_DASHBOARD_METRICS_PORT": "45001"})
    assert "RAY_DASHBOARD_METRICS_PORT=45001" in str(err.value) and err.value.exit_code == 2


def test_empty_environment_values_count_as_unset():
    assert resolve({}, {"RAY_METRICS_EXPORT_PORT": ""}).settings.metrics_export_port == DEFAULTS.metrics_export_port


def test_ray_args_from_env_are_shell_split():
    s = resolve({}, {"SEEDCORE_BOOT_RAY_ARGS": "--object-store-memory=100000000 --resources '{\"a\": 1}'"}).settings
    assert s.ray_args == ("--object-store-memory=100000000", "--resources", '{"a": 1}')


def test_inverted_worker_range():
    with pytest.raises(BootError, match="min_worker_port"):
        resolve({"min_worker_port": "20000", "max_worker_port": "10000"}, {})
