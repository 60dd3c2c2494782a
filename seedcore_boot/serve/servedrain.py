"""Ray 2.20's Serve controller, taught to see draining nodes: the head's half of a worker's drain (drain.py).

Serve already knows how to leave a draining node: DeploymentState.migrate_replicas_on_draining_nodes starts
a replacement elsewhere before it stops a RUNNING replica gracefully (its in-flight requests finish), the
scheduler places nothing new there (get_active_node_ids), and the controller drains the node's proxy
(_update_proxy_nodes). All of it asks ClusterNodeInfoCache.get_draining_nodes(), which open-source Ray
2.20 implements as `return dict()` (serve/_private/cluster_node_info_cache.py): a node the GCS accepted as
draining means nothing to Serve, and its replicas die with the node (measured: still there 60 s after
`ray drain-node`; HTTP 500 bursts when the worker stopped).

The change, and nothing more: in DefaultClusterNodeInfoCache, update() also reads the draining nodes the
GCS reports (ray._private.state.state.get_draining_nodes(): {node id hex: deadline in Unix ms}), once per
control-loop cycle like the rest of the cache, and get_draining_nodes() returns that, for alive nodes.

How it gets there, only in processes we start: a head's raylet runs with
__RAY_WORKER_PROCESS_SETUP_HOOK_ENV_VAR=seedcore_boot.servedrain.install (rayenv.py), Ray's own
worker_process_setup_hook, which default_worker.py calls in every worker process of that node before it
takes work. install() patches nothing on any Ray but 2.20.0, imports nothing of Serve's, and only arranges
for the patch to be applied if the process ever imports the cache's module (the Serve controller does; a
task worker never pays more than this import). It never raises: Ray ends a worker whose hook fails.
Turned off by serve_drain=false on the head (then Serve behaves as Ray ships it).
"""

import importlib.abc
import importlib.util
import sys

HOOK_ENV = "__RAY_WORKER_PROCESS_SETUP_HOOK_ENV_VAR"  # ray_constants.WORKER_PROCESS_SETUP_HOOK_ENV_VAR
# The path every version hands to Ray, kept where it was before the move (seedcore_boot/servedrain.py imports
# install from here): a worker of another seedcore-boot version imports the path its head gives.
HOOK = "seedcore_boot.servedrain.install"
RAY_VERSION = "2.20.0"
TARGET = "ray.serve._private.cluster_node_info_cache"


def install():
    """Ray's worker setup hook: patch Serve's node cache in this process if it ever loads it."""
    try:
        import ray

        if ray.__version__ != RAY_VERSION:
            return
        if TARGET in sys.modules:
            patch(sys.modules[TARGET])
        elif not any(isinstance(f, _PatchOnImport) for f in sys.meta_path):
            sys.meta_path.insert(0, _PatchOnImport())
    except Exception:  # noqa: BLE001 - a failing hook would end the worker; without it Serve is only Ray's
        pass


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Finds TARGET the normal way, and patches it right after it is executed."""

    def find_spec(self, name, path=None, target=None):
        if name != TARGET:
            return None
        sys.meta_path.remove(self)  # once is enough, and the normal finders must find it now
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        execute = spec.loader.exec_module

        def exec_module(module):
            execute(module)
            patch(module)

        spec.loader.exec_module = exec_module
        return spec


def patch(module):
    """Make module.DefaultClusterNodeInfoCache report the GCS's draining nodes. Idempotent."""
    cls = module.DefaultClusterNodeInfoCache
    if getattr(cls, "_seedcore_drain", False):
        return
    update = cls.update

    def update_and_read_draining(self):
        update(self)
        try:
            self._seedcore_draining = draining_nodes(self.get_alive_node_ids())
        except Exception:  # noqa: BLE001 - keep the last answer; the next cycle tries again
            pass

    def get_draining_nodes(self):
        return dict(getattr(self, "_seedcore_draining", {}))

    cls.update = update_and_read_draining
    cls.get_draining_nodes = get_draining_nodes
    cls._seedcore_drain = True


def draining_nodes(alive, read=None):
    """{node id hex: deadline ms} for the alive nodes the GCS reports draining."""
    if read is None:
        import ray._private.state

        read = ray._private.state.state.get_draining_nodes
    return {node: deadline for node, deadline in read().items() if node in alive}
