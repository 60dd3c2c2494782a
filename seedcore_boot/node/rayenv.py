"""The environment `ray start` runs with: what the node's settings, its TLS and Serve's drain hook add to ours,
and what of ours is not passed on. Our users' metrics variables are mapped onto the knobs Ray 2.20 reads
(a disabled metrics server's ports are moved by host/ports.py):

Ray reads DASHBOARD_METRIC_PORT and AUTOSCALER_METRIC_PORT from the environment and the export port only
from `--metrics-export-port`. RAY_DISABLE_METRICS_SERVER, RAY_METRICS_EXPORT_PORT and
RAY_DASHBOARD_METRICS_PORT are read nowhere in Ray; config/fields.py accepts them as ours, and they are left
in the child's environment untouched so that nothing a user exported disappears.
"""

from ..ray import raydeath
from ..serve import servedrain
from ..tls import nodetls as tls

# Ray's own knobs that we only default; a value the user exported wins. Ray retries a refused Unix-socket
# connect (the raylet to its object store at start, workers to the raylet) after sleeping 1000 ms, 10 times.
# The raylet loses that race at start in about a third of head starts here (bench/head_start.py).
# The same 10 s of patience in 100 ms steps.
RAY_DEFAULTS = {
    "RAY_raylet_client_connect_timeout_milliseconds": "100",
    "RAY_raylet_client_num_connect_attempts": "100",
}


FROM_SETTINGS = object()  # node_tls not given: the node's TLS as its settings make it (tls.plan)


def additions(settings, role, ours=True, env=None, node_tls=FROM_SETTINGS):
    """The variables we add to the child's environment, in the order they are printed.

    ours: Ray runs from our own Python (raycmd.gateable), so its workers can import seedcore_boot.
    env: the environment the node starts from (Ray's health-check variables in it set the raylet's patience).
    node_tls: the node's TLS files as its plan holds them (node/plan.py), None with TLS off."""
    add = {"PYTHONUNBUFFERED": "1"}  # ray start's output is a pipe to us; unbuffered keeps the marker prompt
    add.update(RAY_DEFAULTS)
    if role == "worker":
        # The raylet's own patience with a GCS it cannot reach (Ray's default 60 s is shorter than the 65 s
        # the head takes to declare it dead): a head_lost_timeout the user set, or past our watch's wait, so
        # that the watch (headwatch.py) decides and says why, and the node never leaves before Ray would.
        add["RAY_gcs_rpc_server_reconnect_timeout_s"] = str(raydeath.raylet_patience(settings.head_lost_timeout,
                                                                                     env or {}))
    if role == "head":
        add["DASHBOARD_METRIC_PORT"] = str(settings.dashboard_metrics_port)
        add["AUTOSCALER_METRIC_PORT"] = str(settings.autoscaler_metrics_port)
        if settings.redis_address:  # GCS fault tolerance (redisft.py); the password goes on the argv, as Ray wants
            add["RAY_REDIS_ADDRESS"] = settings.redis_address
            add["RAY_external_storage_namespace"] = settings.storage_namespace
        if settings.serve_drain and ours:
            # Ray's worker setup hook, in every worker of this node: Serve's controller learns which nodes
            # drain (servedrain.py). Only with our Python: another Ray's workers could not import the hook.
            add[servedrain.HOOK_ENV] = servedrain.HOOK
    node_tls = tls.plan(settings, role) if node_tls is FROM_SETTINGS else node_tls
    if node_tls:  # in `ray start`'s environment, so in every component and worker: the whole switch (tls/nodetls.py)
        add.update(tls.env(node_tls))
    return add


# Ray 2.20 takes these as set even when empty, and an empty RAY_REDIS_ADDRESS crashes `ray start`
# ("not enough values to unpack", node.py): compose's `${VAR:-}` exports exactly that when FT is off.
_DROP_WHEN_EMPTY = ("RAY_REDIS_ADDRESS", "RAY_external_storage_namespace")


def child_env(settings, role, base_env, ours=True, node_tls=FROM_SETTINGS):
    """A new dict for the child; never mutates base_env (os.environ).

    With tls off, Ray's TLS variables are not passed on. RAY_USE_TLS=1 left exported in the shell while a flag
    (--no-tls) turns tls off would otherwise reach every Ray process, which then wants certificates nobody
    gave (Ray 2.20 ray/_private/tls_utils.py load_certs_from_env: RuntimeError "If the environment variable
    RAY_USE_TLS is set to true then RAY_TLS_SERVER_CERT, ... must also be set"), and our own GCS calls
    (gcsprobe.use_tls reads the child's environment) stopped with a KeyError before Ray started."""
    node_tls = tls.plan(settings, role) if node_tls is FROM_SETTINGS else node_tls
    off = () if node_tls else tls.ENV_NAMES
    env = {k: v for k, v in base_env.items() if not (k in _DROP_WHEN_EMPTY and not v.strip()) and k not in off}
    env.update((k, v) for k, v in additions(settings, role, ours, base_env, node_tls).items()
               if not (k in RAY_DEFAULTS and k in base_env))
    return env
