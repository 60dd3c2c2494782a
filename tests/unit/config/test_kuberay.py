"""KubeRay as a source of settings (seedcore_boot/config/kuberay.py): the generated `ray start` in any flag order,
what maps onto which setting, what is refused, and how it meets the other layers."""

import random

import pytest

from seedcore_boot.config import kuberay
from seedcore_boot.config.settings import resolve
from seedcore_boot.errors import BootError
from tests import REPO
from tests.skips import need_module

# As KubeRay v1.1.1 writes them (pod.go generateRayStartCommand): " --k=v " per flag, true as a bare switch.
HEAD_FLAGS = [" --dashboard-host=0.0.0.0 ", " --num-cpus=1 ", " --block ", " --metrics-export-port=8080 ",
              " --memory=2147483648 ", " --dashboard-agent-listen-port=52365 "]
WORKER_FLAGS = [" --block ", " --dashboard-agent-listen-port=52365 ", " --memory=4294967296 ", " --num-cpus=2 ",
                " --address=rc-head-svc.default.svc.cluster.local:6379 ", " --metrics-export-port=8080 "]


def gen(head, flags, seed=0):
    flags = list(flags)
    random.Random(seed).shuffle(flags)  # v1.1 iterates a Go map: any order
    return ("ray start --head " if head else "ray start ") + "".join(flags)


def pod_env(head=True, extra=(), seed=0, **env):
    return {kuberay.ENV: gen(head, (HEAD_FLAGS if head else WORKER_FLAGS) + list(extra), seed), **env}


@pytest.mark.parametrize("seed", range(5))
def test_every_order_gives_the_same_settings(seed):
    r = resolve({}, pod_env(seed=seed), role="head")
    s = r.settings
    assert (s.dashboard_host, s.num_cpus, s.memory, s.metrics_export_port) == ("0.0.0.0", 1, 2147483648, 8080)
    assert r.sources["num_cpus"] == "kuberay" and r.sources["gcs_port"] == "default"
    assert r.platform.role == "head" and not r.platform.rayservice


def test_a_worker_takes_its_head_address_and_limits():
    s = resolve({}, pod_env(head=False, seed=3), role="worker").settings
    assert s.head_address == "rc-head-svc.default.svc.cluster.local:6379"
    assert (s.num_cpus, s.memory) == (2, 4294967296)


def test_users_rayStartParams_map_onto_settings():
    extra = [' --resources="{\\"accel\\": 2, \\"Custom\\": 0.5}" ', " --object-store-memory=100000000 ",
             " --port=7379 ", " --node-manager-port=7380 ", " --min-worker-port=20000 ", " --max-worker-port=20100 ",
             " --num-gpus=1 ", " --temp-dir=/data/ray ", " --ray-client-server-port=10101 ", " --no-monitor ",
             " --node-ip-address=$MY_POD_IP ", " --redis-password=${REDIS_PASSWORD} ", " --dashboard-port=8266 "]
    env = pod_env(extra=extra, seed=7, MY_POD_IP="10.1.2.3", REDIS_PASSWORD="pw")
    s = resolve({}, env, role="head").settings
    assert s.resources == '{"Custom": 0.5, "accel": 2}'
    assert (s.object_store_memory, s.gcs_port, s.node_manager_port) == (100000000, 7379, 7380)
    assert (s.min_worker_port, s.max_worker_port, s.num_gpus, s.temp_dir) == (20000, 20100, 1, "/data/ray")
    assert (s.client_port, s.dashboard_port, s.node_ip_address, s.redis_password) == (10101, 8266, "10.1.2.3", "pw")
    assert s.monitor is False


def test_other_ray_start_options_pass_through_as_extra_arguments():
    extra = [" --plasma-directory=/plasma ", " --disable-usage-stats ", " --labels='{\"zone\": \"a\"}' "]
    s = resolve({}, pod_env(extra=extra), role="head").settings
    assert sorted(s.ray_args) == ["--disable-usage-stats", '--labels={"zone": "a"}', "--plasma-directory=/plasma"]


def test_pass_through_and_mapped_flags_cover_ray_start_exactly():
    """Every `ray start` option of the installed Ray 2.20 is mapped, passed through, or handled; nothing else."""
    scripts = need_module("ray.scripts.scripts")
    ray_options = {opt[2:] for p in scripts.start.params for opt in p.opts if opt.startswith("--")}
    ours = set(kuberay.TO_SETTING) | set(kuberay.INVERTED) | set(kuberay.ALWAYS) | set(kuberay.REFUSED) \
        | kuberay.PASS_THROUGH | {"head"}
    assert ours == ray_options
    switches = {opt[2:] for p in scripts.start.params for opt in p.opts if getattr(p, "is_flag", False)}
    assert kuberay.SWITCHES == switches


@pytest.mark.parametrize("flag,why", [
    (" --include-dashboard=false ", "cannot honour"), (" --worker-port-list=10002,10003 ", "min-worker-port"),
    (" --object-store-memry=1 ", "no `ray start` option"), (" --num-cpus=$(nproc) ", "command substitution"),
    (" --num-cpus=2 ", "twice"),
])
def test_what_cannot_be_honoured_is_one_usage_line(flag, why):
    with pytest.raises(BootError) as err:
        resolve({}, pod_env(extra=[flag]), role="head")
    assert err.value.exit_code == 2 and why in str(err.value)
    assert "\n" not in str(err.value)


def test_a_value_set_both_there_and_in_our_settings_differently_names_both():
    with pytest.raises(BootError) as err:
        resolve({}, pod_env(SEEDCORE_BOOT_NUM_CPUS="4"), role="head")
    msg = str(err.value)
    assert err.value.exit_code == 2
    assert "num_cpus is 1 from kuberay (--num-cpus in KUBERAY_GEN_RAY_START_CMD)" in msg
    assert "4 from env SEEDCORE_BOOT_NUM_CPUS" in msg


def test_the_same_value_in_both_places_is_fine_and_shows_both_sources(tmp_path):
    cfg = tmp_path / "b.yaml"
    cfg.write_text("metrics_export_port: 8080\n")
    r = resolve({"num_cpus": "1"}, pod_env(), str(cfg), role="head")
    assert r.sources["num_cpus"] == "kuberay and flag"
    assert r.sources["metrics_export_port"] == f"file {cfg} and kuberay"
    with pytest.raises(BootError):
        cfg.write_text("metrics_export_port: 9090\n")
        resolve({}, pod_env(), str(cfg), role="head")


def test_head_or_worker_comes_from_the_string():
    with pytest.raises(BootError) as err:
        resolve({}, pod_env(head=False), role="head")
    assert err.value.exit_code == 2 and "KubeRay worker pod" in str(err.value)
    assert "seedcore-boot worker" in str(err.value)


def test_a_rayservice_head_deploys_nothing_of_its_own():
    tags = {"RAY_USAGE_STATS_EXTRA_TAGS": "kuberay_version=v1.1.1;kuberay_crd=RayService"}
    r = resolve({}, pod_env(**tags), role="head")
    assert r.settings.serve is False and r.platform.rayservice
    assert any("RayService" in n for n in r.platform.notes)
    with pytest.raises(BootError) as err:
        resolve({"serve_app": "pkg:app"}, pod_env(**tags), role="head")
    assert err.value.exit_code == 2 and "serveConfigV2" in str(err.value)
    plain = resolve({}, pod_env(RAY_USAGE_STATS_EXTRA_TAGS="kuberay_version=v1.1.1;kuberay_crd=RayCluster"),
                    role="head")
    assert plain.settings.serve is True and not plain.platform.notes


def test_kuberays_fault_tolerance_variables_are_our_settings():
    env = pod_env(RAY_REDIS_ADDRESS="redis:6379", REDIS_PASSWORD="pw", RAY_external_storage_namespace="uid-123")
    s = resolve({}, env, role="head").settings
    assert (s.redis_address, s.redis_password, s.storage_namespace) == ("redis:6379", "pw", "uid-123")
    w = resolve({}, pod_env(head=False, RAY_gcs_rpc_server_reconnect_timeout_s="600"), role="worker")
    assert w.settings.head_lost_timeout == 600


def test_variables_kubeRay_injects_are_not_user_settings_to_warn_about():
    r = resolve({}, pod_env(RAY_ADDRESS="127.0.0.1:6379"), role="head")
    assert "head_address" in r.injected  # a worker-only setting on a head, put there by KubeRay
    assert not resolve({}, {"RAY_ADDRESS": "h:6379"}).injected  # outside KubeRay a user set it


def test_the_missing_annotation_is_one_line_naming_it():
    env = pod_env()
    parent = ["/bin/bash", "-lc", "--", f" seedcore-boot  head  && ulimit -n 65536; {env[kuberay.ENV]}"]
    with pytest.raises(BootError) as err:
        kuberay.pod(env, "head", parent_argv=parent)
    assert err.value.exit_code == 2 and kuberay.ANNOTATION in str(err.value)
    assert kuberay.pod(env, "head", parent_argv=["/usr/bin/tini", "--"]).role == "head"
    v17 = ["/bin/bash", "-c", "--", f" seedcore-boot  head  && ulimit -n ${{RAY_START_ULIMIT_OPEN_FILES:-65536}}; "
                                    f"{env[kuberay.ENV]}"]
    with pytest.raises(BootError):  # KubeRay v1.7's form of the same rewrite
        kuberay.pod(env, "head", parent_argv=v17)


@pytest.mark.parametrize("text,env,words", [
    ('ray start --a=x\\ y --b="q \\"r\\" $V" --c=\'$V\'', {"V": "v"}, ["ray", "start", "--a=x y", '--b=q "r" v',
                                                                     "--c=$V"]),
    ("ray  start   --x=${UNSET}", {}, ["ray", "start", "--x="]),
])
def test_split_is_the_shell_s(text, env, words):
    assert kuberay.split(text, env) == words


def test_outside_kuberay_nothing_changes():
    assert kuberay.pod({}, "head") is None
    assert resolve({}, {}, role="head").platform is None


def test_kuberays_rewritten_script_goes_no_further_than_our_line():
    """bash runs `<ours> && ulimit -n 65536; <ray start>`: `;` would run the ray start after any exit code of
    ours, so seedcore-boot ends bash's script with SIGINT (exit 130). The ray start here is a marker."""
    import subprocess
    import sys

    gen = "ray start --head  --block "
    script = f" {sys.executable}  -m  seedcore_boot  head  && ulimit -n 65536; {gen}"
    # No `ray` on this PATH: if bash went on, it would say so (127), and start nothing.
    env = {"PATH": "/usr/bin:/bin", "KUBERAY_GEN_RAY_START_CMD": gen,
           "PYTHONPATH": REPO}
    # A container's bash starts with SIGINT at its default; a test run started in the background of a
    # non-interactive shell inherits it ignored, and bash cannot undo an ignore it started with.
    import signal
    out = subprocess.run(["bash", "-c", "--", script], env=env, capture_output=True, text=True, timeout=60,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    # bash ends by SIGINT (here, as a child; as a container's PID 1 it exits 130, tests/e2e/test_kuberay.py)
    assert out.returncode == -2 and "ray: command not found" not in out.stderr, (out.returncode, out.stderr)
    errors = [l for l in out.stderr.splitlines() if l.strip()]
    assert len(errors) == 1 and kuberay.ANNOTATION in errors[0], out.stderr
