"""KubeRay v1.1.1's side of a pod, from a shipped manifest: pure functions, no Docker.

Sources (ray-project/kuberay v1.1.1, ray-operator/controllers/ray/common/pod.go):
common/pod.go DefaultHeadPodTemplate / DefaultWorkerPodTemplate (labels, the wait-gcs-ready init container),
BuildPod (the command left alone under ray.io/overwrite-container-cmd, else rewritten), setContainerEnvVars
(the injected environment), setMissingRayStartParams and generateRayStartCommand / convertParamMap (the
`ray start` string), initLivenessAndReadinessProbe (default probes), addEmptyDir (/dev/shm).
"""

import base64
import math
import random
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import yaml

KUBERAY_VERSION = "v1.1.1"
DOMAIN = "cluster.local"
OVERWRITE = "ray.io/overwrite-container-cmd"
FT = "ray.io/ft-enabled"
# Values written as --k=false rather than dropped (convertParamMap).
KEEP_FALSE = ("log-color", "include-dashboard")
POD_IP = "__status.podIP__"  # a fieldRef the kubelet fills in once it has given the pod its address


def documents(path):
    with open(path, encoding="utf-8") as fh:
        return [d for d in yaml.safe_load_all(fh) if d]


_SUFFIX = {"m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def quantity(text):
    """A Kubernetes resource.Quantity as a number: "500m" -> 0.5, "4Gi" -> 4294967296."""
    m = re.fullmatch(r"([0-9.]+)([a-zA-Z]*)", str(text).strip())
    if not m or (m.group(2) and m.group(2) not in _SUFFIX):
        raise ValueError(f"not a quantity: {text!r}")
    return float(m.group(1)) * _SUFFIX.get(m.group(2), 1)


def value(text):
    """Quantity.Value(): the integer value, rounded up (a 500m CPU limit gives num-cpus 1)."""
    return int(math.ceil(quantity(text) - 1e-9))


@dataclass
class Probe:
    command: List[str]
    initial_delay: float = 0
    period: float = 10
    timeout: float = 1
    failure: int = 3


@dataclass
class Container:
    name: str
    image: str
    command: Optional[List[str]]  # None: the image's ENTRYPOINT
    args: Optional[List[str]]
    env: Dict[str, str]
    mounts: List[dict]  # {"name", "mountPath", "readOnly"}
    cpu: Optional[float] = None
    memory: Optional[int] = None
    readiness: Optional[Probe] = None
    liveness: Optional[Probe] = None
    security: dict = field(default_factory=dict)
    ports: List[dict] = field(default_factory=list)


@dataclass
class Pod:
    name: str
    role: str  # head, worker, or "" for plain pods (a Deployment's)
    group: str
    labels: Dict[str, str]
    containers: List[Container]  # containers[0] is the Ray container (RayContainerIndex)
    init: List[Container]
    volumes: Dict[str, dict]
    shm: Optional[int]  # /dev/shm size in bytes
    restart_policy: str = "Always"
    grace: float = 30  # terminationGracePeriodSeconds (Kubernetes' default)
    security: dict = field(default_factory=dict)  # the pod's securityContext


def _name(rng, n=5):
    return "".join(rng.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(n))


class Operator:
    """KubeRay v1.1.1 reconciling one RayCluster (or the RayCluster of a RayService) from a manifest."""

    def __init__(self, docs, namespace="default", seed=0):
        self.docs, self.namespace = docs, namespace
        self.rng = random.Random(seed)
        service = next((d for d in docs if d["kind"] == "RayService"), None)
        cluster = next((d for d in docs if d["kind"] == "RayCluster"), None)
        if service:
            self.crd, meta, self.spec = "RayService", service["metadata"], service["spec"]["rayClusterConfig"]
            self.serve_config = service["spec"].get("serveConfigV2")
            # constructRayClusterForRayService: <rayservice>-raycluster-<5 random>, the RayService's annotations
            self.cluster = f"{meta['name']}-raycluster-{_name(self.rng)}"
        else:
            self.crd, meta, self.spec, self.serve_config = "RayCluster", cluster["metadata"], cluster["spec"], None
            self.cluster = meta["name"]
        self.annotations = dict(meta.get("annotations") or {})
        self.uid = f"{self.rng.getrandbits(32):08x}-uid"  # metadata.uid, the FT namespace
        self.head_svc = f"{self.cluster}-head-svc"
        self.fqdn = f"{self.head_svc}.{namespace}.svc.{DOMAIN}"
        self.head_port = int(self.spec["headGroupSpec"]["rayStartParams"].get("port", 6379))

    # --- objects other than Ray's --------------------------------------------------------------
    def secret(self, name, key):
        doc = next(d for d in self.docs if d["kind"] == "Secret" and d["metadata"]["name"] == name)
        if key in (doc.get("stringData") or {}):
            return doc["stringData"][key]
        return base64.b64decode(doc["data"][key]).decode()

    def secret_keys(self, name):
        doc = next(d for d in self.docs if d["kind"] == "Secret" and d["metadata"]["name"] == name)
        return sorted(set(doc.get("stringData") or {}) | set(doc.get("data") or {}))

    def config_map(self, name):
        return next(d for d in self.docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == name)["data"]

    def deployments(self):
        return [d for d in self.docs if d["kind"] == "Deployment"]

    def services(self):
        """(DNS name, selector) of the manifest's own Services."""
        return [(f"{d['metadata']['name']}.{self.namespace}.svc.{DOMAIN}", d["spec"].get("selector") or {})
                for d in self.docs if d["kind"] == "Service"]

    def plain_pod(self, deployment):
        template = deployment["spec"]["template"]
        name = f"{deployment['metadata']['name']}-{_name(self.rng, 9)}-{_name(self.rng)}"
        containers = [self._container(c, name, {}) for c in template["spec"]["containers"]]
        return Pod(name, "", "", dict(template["metadata"].get("labels") or {}), containers, [],
                   {v["name"]: v for v in template["spec"].get("volumes") or []}, None,
                   security=template["spec"].get("securityContext") or {})

    # --- Ray pods ---------------------------------------------------------------------------------
    def head(self):
        return self._ray_pod("head", "headgroup", self.spec["headGroupSpec"], f"{self.cluster}-head-{_name(self.rng)}")

    def worker(self, group_name=None):
        group = next(g for g in self.spec["workerGroupSpecs"] if group_name in (None, g["groupName"]))
        return self._ray_pod("worker", group["groupName"], group,
                             f"{self.cluster}-worker-{group['groupName']}-{_name(self.rng)}")

    def _ray_pod(self, role, group, spec, name):
        template = spec["template"]
        pod_spec = template["spec"]
        labels = dict(template.get("metadata", {}).get("labels") or {})
        labels.update({"ray.io/cluster": self.cluster, "ray.io/node-type": role, "ray.io/group": group,
                       "ray.io/identifier": f"{self.cluster}-{role}", "ray.io/is-ray-node": "yes",
                       "app.kubernetes.io/name": "kuberay", "app.kubernetes.io/created-by": "kuberay-operator"})
        if self.crd == "RayService":
            # BuildPod: a worker is in the serve Service whenever Ready (its readiness probe checks the proxy); a
            # head starts out of it, and the RayService controller labels it "true" once its proxy answers
            # GET <pod IP>:8000/-/healthz (labelHeadPodForServeStatus; v1.6.2: updateHeadPodServeLabel).
            labels["ray.io/serve"] = "false" if role == "head" else "true"
        user = pod_spec["containers"]
        ray = self._container(user[0], name, {"ray.io/cluster": self.cluster})
        # DefaultHead/WorkerPodTemplate: a `metrics` port 8080 unless the Ray container names one.
        if not any(p.get("name") == "metrics" for p in ray.ports):
            ray.ports.append({"name": "metrics", "containerPort": 8080})
        params = start_params(role, dict(spec.get("rayStartParams") or {}), user[0].get("resources") or {},
                              self.fqdn, self.head_port, bool(self.spec.get("enableInTreeAutoscaling")))
        generated = ray_start_cmd(role, params, self.rng)
        if self.annotations.get(OVERWRITE) != "true" and "ray start" not in " ".join(
                (ray.command or []) + (ray.args or [])):
            ray.command, ray.args = rewrite(ray.command, ray.args, generated)
        ray.env.update((k, v) for k, v in self._injected(role, name, group, generated, params).items()
                       if k not in ray.env)  # KubeRay adds a variable only if the user has not set it
        default_ready, default_live = default_probes(role, self.crd == "RayService")
        ray.readiness = ray.readiness or default_ready
        ray.liveness = ray.liveness or default_live
        # setInitContainerEnvVars: every init container (the user's, and wait-gcs-ready) gets FQ_RAY_IP, RAY_IP.
        ips = {"FQ_RAY_IP": self.fqdn, "RAY_IP": self.fqdn.split(".")[0]}
        init = []
        for c in pod_spec.get("initContainers") or []:
            mine = self._container(c, name, {})
            mine.env.update((k, v) for k, v in ips.items() if k not in mine.env)
            init.append(mine)
        if role == "worker":  # DefaultWorkerPodTemplate appends it after the user's: a copy of the Ray container
            init.append(Container(
                "wait-gcs-ready", ray.image, ["/bin/bash", "-lc", "--"], [wait_gcs_ready(self.fqdn, self.head_port)],
                {**self._container(user[0], name, {}).env, **ips}, ray.mounts, cpu=0.2, memory=256 * 2**20,
                security=ray.security))
        volumes = {v["name"]: v for v in pod_spec.get("volumes") or []}
        return Pod(name, role, group, labels, [ray] + [self._container(c, name, {}) for c in user[1:]], init,
                   volumes, shm_size(user[0], volumes), pod_spec.get("restartPolicy", "Always"),
                   float(pod_spec.get("terminationGracePeriodSeconds", 30)), pod_spec.get("securityContext") or {})

    def _injected(self, role, pod_name, group, generated, params):
        """setContainerEnvVars, v1.1.1."""
        env = {}
        if role == "worker":
            env["FQ_RAY_IP"] = self.fqdn
            env["RAY_IP"] = self.fqdn.split(".")[0]
        env["RAY_CLUSTER_NAME"] = self.cluster
        env["RAY_CLOUD_INSTANCE_ID"] = pod_name
        env["RAY_NODE_TYPE_NAME"] = group
        env["KUBERAY_GEN_RAY_START_CMD"] = generated
        env["RAY_PORT"] = str(self.head_port)
        env["RAY_ADDRESS"] = f"127.0.0.1:{self.head_port}" if role == "head" else f"{self.fqdn}:{self.head_port}"
        env["RAY_USAGE_STATS_KUBERAY_IN_USE"] = "1"
        if role == "head":
            env["RAY_USAGE_STATS_EXTRA_TAGS"] = f"kuberay_version={KUBERAY_VERSION};kuberay_crd={self.crd}"
        env["REDIS_PASSWORD"] = params.get("redis-password", "")
        if self.annotations.get(FT) == "true":
            env["RAY_external_storage_namespace"] = self.uid
            if role == "worker":
                env["RAY_gcs_rpc_server_reconnect_timeout_s"] = "600"
        if self.crd == "RayService":
            env.update(RAY_timeout_ms_task_wait_for_death_info="0", RAY_gcs_server_request_timeout_seconds="5",
                       RAY_SERVE_KV_TIMEOUT_S="5")
        env["RAY_DASHBOARD_ENABLE_K8S_DISK_USAGE"] = "1"
        return env

    def _container(self, c, pod_name, labels):
        """A container as the kubelet runs it: env resolved (value, fieldRef, secretKeyRef; $(VAR) in a value
        expanded from the variables before it), probes, limits. Its command and args are expanded from its
        whole environment when it starts (kubelet.py), as the kubelet does."""
        env = {}
        for item in c.get("env") or []:
            if "valueFrom" not in item:  # an empty value is left out of the object: {"name": "REDIS_PASSWORD"}
                env[item["name"]] = expand(str(item.get("value", "")), env)
            else:
                src = item["valueFrom"]
                if "secretKeyRef" in src:
                    env[item["name"]] = self.secret(src["secretKeyRef"]["name"], src["secretKeyRef"]["key"])
                else:
                    path = src["fieldRef"]["fieldPath"]
                    env[item["name"]] = {"metadata.name": pod_name, "metadata.namespace": self.namespace}.get(
                        path, labels.get(path.split("'")[1]) if "labels[" in path else POD_IP)
        limits = (c.get("resources") or {}).get("limits") or {}
        return Container(
            c["name"], c["image"],
            list(c["command"]) if c.get("command") else None, list(c["args"]) if c.get("args") else None,
            env, list(c.get("volumeMounts") or []),
            cpu=quantity(limits["cpu"]) if "cpu" in limits else None,
            memory=int(quantity(limits["memory"])) if "memory" in limits else None,
            readiness=probe(c.get("readinessProbe")), liveness=probe(c.get("livenessProbe")),
            security=c.get("securityContext") or {}, ports=list(c.get("ports") or []))


def expand(text, env):
    """Kubernetes' $(VAR) expansion in env values, command and args: a defined variable is replaced,
    anything else is left as written; $$ escapes."""
    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
                  lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)), text)


def probe(spec):
    if not spec:
        return None
    return Probe(list(spec["exec"]["command"]), spec.get("initialDelaySeconds", 0), spec.get("periodSeconds", 10),
                 spec.get("timeoutSeconds", 1), spec.get("failureThreshold", 3))


def start_params(role, params, resources, fqdn, head_port, autoscaling):
    """rayStartParams as KubeRay completes them (setMissingRayStartParams; the limits in
    generateRayStartCommand). The user's own keys always win, except block (and no-monitor with in-tree
    autoscaling), which are overwritten."""
    p = dict(params)
    if role == "worker" and "address" not in p:
        p["address"] = f"{fqdn}:{head_port}"
    if role == "head" and "dashboard-host" not in p:
        p["dashboard-host"] = "0.0.0.0"
    p.setdefault("metrics-export-port", "8080")
    p["block"] = "true"
    p.setdefault("dashboard-agent-listen-port", "52365")
    if role == "head" and autoscaling:
        p["no-monitor"] = "true"
    limits = (resources or {}).get("limits") or {}
    if "num-cpus" not in p and "cpu" in limits and quantity(limits["cpu"]):
        p["num-cpus"] = str(value(limits["cpu"]))
    if "memory" not in p and "memory" in limits and quantity(limits["memory"]):
        p["memory"] = str(value(limits["memory"]))
    if "num-gpus" not in p:
        gpu = next((k for k in limits if k.endswith("gpu") and quantity(limits[k])), None)
        if gpu:
            p["num-gpus"] = str(value(limits[gpu]))
    return p


def ray_start_cmd(role, params, rng):
    """generateRayStartCommand + convertParamMap: " --k=v " per flag, "true" a bare switch, "false" left out
    (except KEEP_FALSE), in Go's map order: random in v1.1 (sorted from v1.3)."""
    keys = list(params)
    rng.shuffle(keys)
    flags = ""
    for k in keys:
        v = params[k]
        if k not in KEEP_FALSE and v.lower() == "true":
            flags += f" --{k} "
        elif k not in KEEP_FALSE and v.lower() == "false":
            continue
        else:
            flags += f" --{k}={v} "
    return ("ray start --head " if role == "head" else "ray start ") + flags


def rewrite(command, args, generated):
    """BuildPod without the overwrite annotation: `/bin/bash -lc -- "<cmd> && ulimit -n 65536; <ray start>"`."""
    cmd = "".join(f" {a} " for a in (command or []) + (args or []))
    script = f"{cmd} && ulimit -n 65536; {generated}" if cmd else f"ulimit -n 65536; {generated}"
    return ["/bin/bash", "-lc", "--"], [script]


def default_probes(role, rayservice):
    """initLivenessAndReadinessProbe, v1.1: exec `bash -c "wget ... | grep success && ..."`, ports hard-coded."""
    base = "wget -T 2 -q -O- http://localhost:{}/{} | grep success"
    checks = [base.format(52365, "api/local_raylet_healthz")]
    if role == "head":
        checks.append(base.format(8265, "api/gcs_healthz"))
    live = Probe(["bash", "-c", " && ".join(checks)], initial_delay=30, period=5, timeout=1, failure=120)
    ready_checks = checks + ([base.format(8000, "-/healthz")] if role == "worker" and rayservice else [])
    ready = Probe(["bash", "-c", " && ".join(ready_checks)], initial_delay=10, period=5, timeout=1,
                  failure=1 if role == "worker" and rayservice else 10)
    return ready, live


_WAIT_GCS_READY = [  # (depth, line)
    (0, "SECONDS=0"), (0, "while true; do"), (1, "if (( SECONDS <= 120 )); then"),
    (2, "if ray health-check --address {address} > /dev/null 2>&1; then"), (3, 'echo "GCS is ready."'), (3, "break"),
    (2, "fi"), (2, 'echo "$SECONDS seconds elapsed: Waiting for GCS to be ready."'), (1, "else"),
    (2, "if ray health-check --address {address}; then"),
    (3, 'echo "GCS is ready. Any error messages above can be safely ignored."'), (3, "break"), (2, "fi"),
    (2, 'echo "$SECONDS seconds elapsed: Still waiting for GCS to be ready. For troubleshooting, refer to the FAQ at '
        'https://github.com/ray-project/kuberay/blob/master/docs/guidance/FAQ.md."'),
    (1, "fi"), (1, "sleep 5\t\t"), (0, "done")]


def wait_gcs_ready(fqdn, port):
    """The wait-gcs-ready init container's loop (DefaultWorkerPodTemplate, v1.1.1), for bash -lc: Go's raw
    string as written there, indented five tabs deep (checked against the real v1.1.1,
    tests/e2e/kuberay_real/test_raycluster.py)."""
    address = f"{fqdn}:{port}"
    return "\n" + "".join("\t" * (5 + depth) + line.format(address=address) + "\n"
                          for depth, line in _WAIT_GCS_READY) + "\t" * 4


def shm_size(container, volumes):
    """/dev/shm: the user's memory emptyDir mounted there (its sizeLimit), else KubeRay's (addEmptyDir):
    sizeLimit = the memory request, else the limit."""
    resources = container.get("resources") or {}
    for mount in container.get("volumeMounts") or []:
        if mount["mountPath"] == "/dev/shm":
            empty = volumes.get(mount["name"], {}).get("emptyDir") or {}
            if empty.get("sizeLimit"):
                return int(quantity(empty["sizeLimit"]))
    memory = (resources.get("requests") or {}).get("memory") or (resources.get("limits") or {}).get("memory")
    return int(quantity(memory)) if memory else None
