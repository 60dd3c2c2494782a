"""What the KubeRay tests (tests/e2e/test_kuberay*.py, tests/e2e/kuberay_real/) share: the shipped
manifests and the project's image, a manifest's head reduced to what one test looks at, and what a test asks
of Ray from inside a pod (pods of the emulation, tests/kuberay/pods.py, or of the real kubelet: anything
with exec and logs): a request, the live nodes, the Serve applications and where their replicas run, a
task pinned to a node, and Ray's own lines in a pod's log."""

import json
import os
import subprocess

from tests import REPO

DEPLOY = os.path.join(REPO, "deploy", "kuberay")
IMAGE = "seedcore-boot/ray:2.20.0"


def build_image():
    out = subprocess.run(["docker", "build", "-q", "--network", "none", "-f", "docker/Dockerfile", "-t", IMAGE, "."],
                         cwd=REPO, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]


def head_only(params=None, env=(), annotations=None, serve=False):
    def edit(docs):
        rc = next(d for d in docs if d["kind"] == "RayCluster")
        head = rc["spec"]["headGroupSpec"]
        head["rayStartParams"].update(params or {})
        c = head["template"]["spec"]["containers"][0]
        c["env"] = [e for e in c["env"] if serve or e["name"] != "SEEDCORE_BOOT_CONFIG"] + \
            [{"name": n, "value": v} for n, v in env]
        if not serve:
            c["env"].append({"name": "SEEDCORE_BOOT_SERVE", "value": "false"})
        head["template"]["spec"]["restartPolicy"] = "Never"  # one life to look at
        if annotations is not None:
            rc["metadata"]["annotations"] = annotations
        return docs
    return edit


def http(pod, url, method="GET", body=None, timeout=10):
    """(status, text) of a request made from inside `pod`."""
    code = ("import json,sys,urllib.request,urllib.error\n"
            "m,u,b,t=sys.argv[1:5]\n"
            "r=urllib.request.Request(u,data=b.encode() if b else None,method=m,"
            "headers={'Content-Type':'application/json'})\n"
            "try:\n with urllib.request.urlopen(r,timeout=float(t)) as x: print(json.dumps([x.status,x.read().decode()]))\n"
            "except urllib.error.HTTPError as e: print(json.dumps([e.code,e.read().decode()]))\n"
            "except Exception as e: print(json.dumps([0,repr(e)]))\n")
    out = pod.exec(["python3", "-c", code, method, url, body or "", str(timeout)], timeout=timeout + 30)
    status, text = json.loads(out.stdout.strip().splitlines()[-1]) if out.stdout.strip() else (0, out.stderr)
    return status, text


def nodes(pod, svc):
    """{node ip: (state, resources total, node id)} of the live nodes, as the head's dashboard reports them."""
    status, text = http(pod, f"http://{svc}:8265/nodes?view=summary")
    assert status == 200, text
    return {n["raylet"]["nodeManagerAddress"]: (n["raylet"]["state"], n["raylet"].get("resourcesTotal", {}),
                                                n["raylet"]["nodeId"])
            for n in json.loads(text)["data"]["summary"] if n["raylet"]["state"] == "ALIVE"}


def applications(pod, svc):
    status, text = http(pod, f"http://{svc}:8265/api/serve/applications/")
    return json.loads(text).get("applications", {}) if status == 200 else {}


def replica_ips(pod, svc, app="ml"):
    deployments = applications(pod, svc).get(app, {}).get("deployments", {})
    return sorted(r["node_ip"] for d in deployments.values() for r in d.get("replicas", [])
                  if r.get("state") == "RUNNING")


def ray_lines(pod):
    return [l for l in pod.logs().splitlines() if l.startswith("ray |")]


TASK_ON_NODE = r"""
import sys, ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
ray.init(logging_level="ERROR", log_to_driver=False)
@ray.remote(num_cpus=0)
def where():
    return ray.util.get_node_ip_address()
print(ray.get(where.options(scheduling_strategy=NodeAffinitySchedulingStrategy(sys.argv[1], soft=False)).remote()))
"""
