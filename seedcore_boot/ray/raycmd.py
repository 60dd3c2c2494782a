"""The `ray start` argv for a head or a worker: a pure function of the settings."""

import os
import shutil
import sys

from ..config.fields import SETTING_OF_OPTION
from ..errors import EXIT_NOT_FOUND, BootError, usage_error

# Flags seedcore-boot manages, refused among the extra arguments (the same flag in ray_args would silently
# win or clash): the options of SETTING_OF_OPTION, the ones it always sets
# (None), and two that stand for a setting in another form.
_MANAGED = {
    **{f"--{option}": setting for option, setting in SETTING_OF_OPTION.items()},
    "--head": None, "--block": None, "--include-dashboard": None, "--log-color": None,
    "--worker-port-list": "min_worker_port", "--no-monitor": "monitor",
}


def check_ray_args(args):
    for arg in args:
        flag = arg.split("=", 1)[0]
        if flag in _MANAGED:
            setting = _MANAGED[flag]
            hint = f"use the {setting} setting instead" if setting else "seedcore-boot always sets it"
            raise usage_error(f"extra ray argument {flag} is managed by seedcore-boot", hint)


def _node_args(s):
    args = [
        f"--metrics-export-port={s.metrics_export_port}",
        f"--dashboard-agent-listen-port={s.dashboard_agent_http_port}",
        f"--dashboard-agent-grpc-port={s.dashboard_agent_grpc_port}",
        f"--node-manager-port={s.node_manager_port}",
        f"--object-manager-port={s.object_manager_port}",
        f"--runtime-env-agent-port={s.runtime_env_agent_port}",
        f"--min-worker-port={s.min_worker_port}",
        f"--max-worker-port={s.max_worker_port}",
    ]
    if s.node_ip_address:
        args.append(f"--node-ip-address={s.node_ip_address}")
    if s.num_cpus is not None:
        args.append(f"--num-cpus={s.num_cpus}")
    if s.num_gpus is not None:
        args.append(f"--num-gpus={s.num_gpus}")
    if s.memory is not None:
        args.append(f"--memory={s.memory}")
    if s.object_store_memory is not None:
        args.append(f"--object-store-memory={s.object_store_memory}")
    if s.resources is not None:
        args.append(f"--resources={s.resources}")
    return args


def head_argv(s, ray=("ray",), redis_password=""):
    """`ray` is the command that runs Ray's CLI (see find_ray). redis_password: read by redisft.password."""
    check_ray_args(s.ray_args)
    return [
        *_cmd(ray), "start", "--head", "--block", "--log-color=false", "--include-dashboard=true",
        f"--port={s.gcs_port}",
        f"--dashboard-host={s.dashboard_host}",
        f"--dashboard-port={s.dashboard_port}",
        f"--dashboard-grpc-port={s.dashboard_grpc_port}",
        f"--ray-client-server-port={s.client_port}",
        *([f"--redis-password={redis_password}"] if redis_password else []),
        *([] if s.monitor else ["--no-monitor"]),  # the autoscaler runs elsewhere (KubeRay's sidecar)
        *_node_args(s),
        f"--temp-dir={s.temp_dir}",  # a head's only: a worker's Ray ignores it and uses its head's (raytemp.py)
        *s.ray_args,
    ]


def worker_argv(s, address, ray=("ray",)):
    check_ray_args(s.ray_args)
    return [*_cmd(ray), "start", f"--address={address}", "--block", "--log-color=false",
            *_node_args(s), *s.ray_args]


def gateable(argv):
    """Whether argv runs our raycli, which can import Ray's CLI and then wait to be released."""
    return "seedcore_boot.ray.raycli" in argv[:3]


def _cmd(ray):
    return [ray] if isinstance(ray, str) else list(ray)


def find_ray():
    """The command that runs Ray's CLI. With Ray in our own environment (the `ray` script beside this
    Python), that is `python -m seedcore_boot.ray.raycli`: the same CLI, minus a 1 s sleep at head start
    (see raycli). A `ray` found only on PATH belongs to another environment and runs as it is."""
    beside = os.path.join(os.path.dirname(sys.executable), "ray")
    if os.path.isfile(beside):
        return [sys.executable, "-m", "seedcore_boot.ray.raycli"]
    found = shutil.which("ray")
    if not found:
        raise BootError("the `ray` command was not found next to this Python or on PATH",
                        'install it: pip install "ray[default,serve]==2.20.0"', EXIT_NOT_FOUND)
    return [found]
