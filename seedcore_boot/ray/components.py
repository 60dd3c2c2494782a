"""Ray 2.20's long-lived components: how each looks in the process table, which a node must have, and
what the raylet was told to advertise."""

import psutil

# What a healthy node runs; a node without one of them is not ready.
EXPECTED = {
    "head": ("gcs_server", "raylet", "dashboard", "dashboard_agent", "runtime_env_agent", "log_monitor",
             "autoscaler_monitor", "ray_client_server"),
    "worker": ("raylet", "dashboard_agent", "runtime_env_agent", "log_monitor"),
}

def expected(settings, role):
    """The components `role` must run with these settings: no autoscaler monitor where another process runs
    it (monitor: false, KubeRay's autoscaler sidecar)."""
    return tuple(c for c in EXPECTED[role] if settings.monitor or c != "autoscaler_monitor")


# How Ray's long-lived components look in the process table.
_COMPONENTS = [
    ("dashboard/dashboard.py", "dashboard"),
    ("dashboard/agent.py", "dashboard_agent"),
    ("log_monitor.py", "log_monitor"),
    ("autoscaler/_private/monitor.py", "autoscaler_monitor"),
    ("autoscaler/v2/monitor.py", "autoscaler_monitor"),
    ("ray.util.client.server", "ray_client_server"),
    ("runtime_env/agent/main.py", "runtime_env_agent"),
]


def component_name(proc):
    """The Ray component `proc` is, or None (workers, helpers)."""
    try:
        name = proc.name()
        if name in ("gcs_server", "raylet"):
            return name
        cmd = " ".join(proc.cmdline()[:3])
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None
    for mark, comp in _COMPONENTS:
        if mark in cmd:
            return comp
    return None


def advertised(components):
    """What the node advertises, from the raylet's command line (services.start_raylet writes it as
    --static_resource_list=NAME,VALUE,...): "CPU=2 memory=10.5GiB object_store_memory=1.80GiB"."""
    for proc, name in components:
        if name != "raylet":
            continue
        try:
            arg = next((a for a in proc.cmdline() if a.startswith("--static_resource_list=")), "")
        except psutil.Error:
            return "unknown"
        return resource_list(arg)
    return "unknown"


def resource_list(arg):
    """"CPU=2 memory=10.5GiB ..." from the raylet's --static_resource_list=NAME,VALUE,...; a value that is no
    number is shown as Ray wrote it (the line is for people; it must never stop a start)."""
    items = arg.split("=", 1)[-1].split(",")
    pairs = dict(zip(items[::2], items[1::2]))
    shown = []
    for key in ("CPU", "GPU", "memory", "object_store_memory"):
        if key in pairs:
            try:
                value = float(pairs[key])
            except ValueError:
                shown.append(f"{key}={pairs[key][:40]}")
                continue
            shown.append(f"{key}={value / 2**30:.2f}GiB" if "memory" in key else f"{key}={value:g}")
    return " ".join(shown) or "unknown"
