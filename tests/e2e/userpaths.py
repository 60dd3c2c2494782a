"""What people do on a running head, as they type it, wherever the node runs: `run(argv)` runs one command in
the node's shell (`docker exec NODE ...`, a pod's container), and each check says what a user sees.

Shared by tests/e2e/test_user_paths*.py (one-machine compose, across machines, KubeRay), so each stack is
checked by the same words.
"""

import json
import re

# A driver as a user writes it: tasks that sleep long enough that one node cannot take them all, spread.
DRIVER = """
import json, sys, time, ray
ray.init()
@ray.remote(num_cpus=float(sys.argv[1]), scheduling_strategy="SPREAD")
def where():
    time.sleep(0.5)
    return ray.get_runtime_context().get_node_id()
print(json.dumps(sorted(set(ray.get([where.remote() for _ in range(16)])))))
"""
JOB = ("import ray; ray.init(); "
       "print('job sum', sum(ray.get([ray.remote(lambda x: x * x).remote(i) for i in range(4)])))")


def _out(result):
    return result.stdout + result.stderr


def active_nodes(text):
    block = text.split("Active:", 1)[-1].split("Pending:", 1)[0] if "Active:" in text else ""
    return len(re.findall(r"^\s*1 node_", block, re.M))


def check_driver_spreads(run, prefix=(), cpus=1):
    """`python` on the node: a driver's tasks (each needing `cpus`) ran on more than one node. Returns the node
    ids."""
    out = run([*prefix, "python", "-c", DRIVER, str(cpus)])
    assert out.returncode == 0, _out(out)[-3000:]
    nodes = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(nodes) > 1, f"every task ran on one node: {nodes}"
    return nodes


def check_ray_status(run, nodes, prefix=()):
    out = run([*prefix, "ray", "status"])
    assert out.returncode == 0 and active_nodes(out.stdout) == nodes, _out(out)[-3000:]


def check_serve_status(run, prefix=()):
    out = run([*prefix, "serve", "status"])
    assert out.returncode == 0, _out(out)[-3000:]
    assert re.search(r"status: RUNNING", out.stdout) and "DEPLOY_FAILED" not in out.stdout, out.stdout


def check_job_submit(run, address="http://127.0.0.1:8265", prefix=()):
    """`ray job submit` through the dashboard; its driver runs on the head."""
    out = run([*prefix, "ray", "job", "submit", "--address", address, "--", "python", "-c", JOB])
    assert out.returncode == 0 and "job sum 14" in out.stdout and "succeeded" in out.stdout, _out(out)[-3000:]


def check_seedcore_status(run, prefix=()):
    out = run([*prefix, "seedcore-boot", "status"])
    assert out.returncode == 0 and ": healthy" in out.stdout.splitlines()[0], _out(out)


def in_tls_shell(argv):
    """A command after `eval "$(seedcore-boot tls env)"`, as docs/security.md says, in sh."""
    quoted = " ".join("'" + a.replace("'", "'\\''") + "'" for a in argv)
    return ["sh", "-c", 'eval "$(seedcore-boot tls env)" && ' + quoted]
