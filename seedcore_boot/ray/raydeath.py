"""How long a head takes to declare a worker it cannot reach dead: the longest a worker may wait for a head
it cannot reach without leaving a cluster that Ray itself would still keep it in.

Ray 2.20's GCS checks every node's raylet with gRPC health checks (gcs_health_check_manager.cc,
HealthCheckContext::StartHealthCheck): each check has a deadline of health_check_timeout_ms; after every
answer or failure the next one starts health_check_period_ms later; a success resets the count, and
health_check_failure_threshold failures in a row mark the node DEAD. Across a cut link nothing answers, so
every check runs to its deadline: the node is declared dead failure_threshold × (timeout + period) after the
last check it answered, 5 × (10 s + 3 s) = 65 s with Ray's defaults (ray_config_def.h). Measured across
Docker hosts: 63-65 s after a machine vanished (docs/docker-hosts.md). health_check_initial_delay_ms
only delays the first check of a new node, so it does not count here.

The settings in force are the head's: RayConfig reads each as the environment variable RAY_<name> when the
process starts, and the system config `ray start --head --system-config` gives (the GCS hands it to every
raylet: GetInternalConfig) is applied over it (ray_config.cc, RayConfig::initialize). A worker cannot see
the head's environment, so it reads its own (the same image and compose/KubeRay environment as the head's,
where a cluster sets these at all) and the head's system config.
"""

import json
import math
from typing import NamedTuple

from ..errors import usage_error

# Ray 2.20's defaults (src/ray/common/ray_config_def.h).
DEFAULTS = {"health_check_period_ms": 3000, "health_check_timeout_ms": 10000, "health_check_failure_threshold": 5}
# The raylet's own patience with a GCS it cannot reach (gcs_rpc_server_reconnect_timeout_s) is set past our
# wait by this much: then our watch, not the raylet's exit, decides and says why.
RAYLET_MARGIN_S = 10


class Threshold(NamedTuple):
    period_ms: int
    timeout_ms: int
    failures: int
    source: str  # where the figures came from, for the line that prints them

    @property
    def seconds(self):
        return self.failures * (self.timeout_ms + self.period_ms) / 1000.0

    def describe(self):
        return (f"{self.seconds:g} s = {self.failures} failed health checks x ({self.timeout_ms / 1000:g} s timeout "
                f"+ {self.period_ms / 1000:g} s period), {self.source}")


def threshold(env, system_config=None):
    """The Threshold in force from RAY_health_check_* in env and the head's system config (a JSON string or
    dict, as GetInternalConfig returns it; empty or None: none)."""
    values, sources = dict(DEFAULTS), set()
    for name in DEFAULTS:
        raw = (env.get(f"RAY_{name}") or "").strip()
        if raw:
            values[name] = _positive(name, raw, f"env RAY_{name}")
            sources.add("env")
    config = system_config
    if isinstance(config, (str, bytes)):
        try:
            config = json.loads(config) if config.strip() else {}
        except ValueError:
            config = {}  # not ours to judge: Ray itself accepted it
    for name in DEFAULTS:
        if isinstance(config, dict) and name in config:
            values[name] = _positive(name, config[name], "the head's system config")
            sources.add("the head's system config")
    source = ("Ray's defaults" if not sources else
              "from " + " and ".join(sorted(sources, key=len)))
    return Threshold(values["health_check_period_ms"], values["health_check_timeout_ms"],
                     values["health_check_failure_threshold"], source)


def _positive(name, raw, where):
    try:
        value = int(str(raw).strip())
    except ValueError:
        value = 0
    if value <= 0:
        raise usage_error(f"bad value {raw!r} for Ray's {name} (from {where}): expected a whole number above 0",
                          f"fix or unset RAY_{name}")
    return value


def raylet_patience(head_lost_timeout, env):
    """RAY_gcs_rpc_server_reconnect_timeout_s for a worker's raylet: a head_lost_timeout the user set, as
    before; by default our wait plus a margin, so the raylet (whose own default, 60 s, is shorter than the
    head's 65 s) never gives up on a head that would still keep it."""
    if head_lost_timeout:
        return head_lost_timeout
    return math.ceil(threshold(env).seconds) + RAYLET_MARGIN_S
