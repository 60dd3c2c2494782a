"""deploy/kuberay/ checked statically: every pod template against Kubernetes' own schema, every RayCluster and
RayService field against KubeRay v1.1's API, what the issue asks of each manifest, and each pod's settings as
seedcore-boot resolves them from what KubeRay hands it (tests/kuberay/operator.py builds that environment)."""

import glob
import os

import pytest

from seedcore_boot.config import fields, kuberay, settings
from tests import REPO
from tests.kuberay import operator
from tests.skips import need_module

MANIFESTS = sorted(glob.glob(os.path.join(REPO, "deploy", "kuberay", "*.yaml")))
K8S_VERSIONS = ("1.25", "1.30")  # the oldest schema kubernetes-validate ships, and a recent one

# The fields of KubeRay v1.1's CRDs that a user writes (ray-operator/apis/ray/v1/raycluster_types.go and
# rayservice_types.go of that release): a key missing here is a typo KubeRay's webhook-less v1.1 would
# silently drop. Pod templates and Services are Kubernetes' own types, checked against its schema instead.
POD_TEMPLATE, SERVICE, ANY = "PodTemplateSpec", "Service", "any"
HEAD_GROUP = {"serviceType": str, "headService": SERVICE, "enableIngress": bool, "rayStartParams": "params",
              "template": POD_TEMPLATE}
WORKER_GROUP = {"groupName": str, "replicas": int, "minReplicas": int, "maxReplicas": int, "numOfHosts": int,
                "rayStartParams": "params", "template": POD_TEMPLATE,
                "scaleStrategy": {"workersToDelete": list, "multihostReplicasToDelete": list}}
AUTOSCALER = {"resources": ANY, "image": str, "imagePullPolicy": str, "env": list, "envFrom": list,
              "volumeMounts": list, "securityContext": ANY, "idleTimeoutSeconds": int, "upscalingMode": str}
CLUSTER_SPEC = {"headGroupSpec": HEAD_GROUP, "workerGroupSpecs": [WORKER_GROUP], "rayVersion": str,
                "enableInTreeAutoscaling": bool, "autoscalerOptions": AUTOSCALER, "headServiceAnnotations": dict,
                "suspend": bool}
SERVICE_SPEC = {"serveConfigV2": str, "rayClusterConfig": CLUSTER_SPEC, "serviceUnhealthySecondThreshold": int,
                "deploymentUnhealthySecondThreshold": int, "serveService": SERVICE}


def docs_of(path):
    return operator.documents(path)


def check_fields(value, schema, where, templates):
    """Every key of `value` exists in `schema`; pod templates and Services are collected for Kubernetes."""
    if schema in (POD_TEMPLATE, SERVICE):
        templates.append((schema, where, value))
    elif schema == "params":
        assert isinstance(value, dict) and all(isinstance(v, str) for v in value.values()), \
            f"{where}: rayStartParams is map[string]string in KubeRay: quote every value"
    elif isinstance(schema, list):
        for i, item in enumerate(value):
            check_fields(item, schema[0], f"{where}[{i}]", templates)
    elif isinstance(schema, dict):
        assert isinstance(value, dict), where
        for key, item in value.items():
            assert key in schema, f"{where}.{key} is not a field of KubeRay v1.1's API"
            check_fields(item, schema[key], f"{where}.{key}", templates)
    elif schema is not ANY:
        assert isinstance(value, schema), f"{where}: expected {schema.__name__}"


def ray_specs(docs):
    for d in docs:
        if d["kind"] == "RayCluster":
            yield d, d["spec"], CLUSTER_SPEC
        elif d["kind"] == "RayService":
            yield d, d["spec"]["rayClusterConfig"], SERVICE_SPEC


def test_there_are_the_three_manifests():
    assert {os.path.basename(p) for p in MANIFESTS} >= {"raycluster.yaml", "rayservice.yaml",
                                                        "raycluster-redis.yaml"}


@pytest.mark.parametrize("path", MANIFESTS, ids=os.path.basename)
def test_every_object_and_pod_template_is_valid_kubernetes(path):
    kv = need_module("kubernetes_validate")
    templates = []
    for doc in docs_of(path):
        if doc["apiVersion"].startswith("ray.io/"):
            assert doc["apiVersion"] == "ray.io/v1"
            spec_schema = SERVICE_SPEC if doc["kind"] == "RayService" else CLUSTER_SPEC
            check_fields(doc["spec"], spec_schema, f"{doc['kind']}.spec", templates)
        else:
            for version in K8S_VERSIONS:
                kv.validate(doc, version, strict=True)
    assert templates
    for kind, where, value in templates:
        obj = ({"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "t"}, "template": value}
               if kind == POD_TEMPLATE else {"apiVersion": "v1", "kind": "Service", **value})
        for version in K8S_VERSIONS:
            try:
                kv.validate(obj, version, strict=True)
            except kv.ValidationError as exc:
                raise AssertionError(f"{where} is not a valid core/v1 {kind} ({version}): {exc.message}") from None


@pytest.mark.parametrize("path", MANIFESTS, ids=os.path.basename)
def test_each_ray_pod_runs_seedcore_boot_as_the_issue_asks(path):
    found = 0
    for doc, spec, _ in ray_specs(docs_of(path)):
        assert doc["metadata"]["annotations"][operator.OVERWRITE] == "true"
        groups = [("head", spec["headGroupSpec"])] + [("worker", g) for g in spec["workerGroupSpecs"]]
        for role, group in groups:
            found += 1
            pod = group["template"]["spec"]
            ray = pod["containers"][0]
            assert ray["command"] == ["seedcore-boot", role] and "args" not in ray  # exec form, PID 1
            assert ray["resources"]["limits"]["cpu"] and ray["resources"]["limits"]["memory"]
            for probe in ("readinessProbe", "livenessProbe"):
                command = " ".join(ray[probe]["exec"]["command"])
                assert "seedcore-boot status" in command, (role, probe)
            assert "--live" in ray["livenessProbe"]["exec"]["command"]
            shm = next(m for m in ray["volumeMounts"] if m["mountPath"] == "/dev/shm")
            assert next(v for v in pod["volumes"] if v["name"] == shm["name"])["emptyDir"]["medium"] == "Memory"
            sec = {**pod.get("securityContext", {}), **ray.get("securityContext", {})}
            assert sec["runAsNonRoot"] is True and sec["runAsUser"] != 0 and sec["allowPrivilegeEscalation"] is False
            env = {e["name"]: e.get("value") for e in ray.get("env", [])}
            assert env.get("RAY_USAGE_STATS_ENABLED") == "0"
            if role == "head":
                ports = {p["containerPort"] for p in ray["ports"]}
                assert ports >= {6379, 8265, 10001, 8080, 44227, 8000}, ports
                assert "--no-serve" in ray["readinessProbe"]["exec"]["command"]  # never waits for Serve
            else:
                drain = float(env.get("SEEDCORE_BOOT_DRAIN_TIMEOUT", fields.DEFAULTS.drain_timeout))
                needed = drain + fields.DEFAULTS.grace_period + 5
                assert pod["terminationGracePeriodSeconds"] >= needed, (pod["terminationGracePeriodSeconds"], needed)
    assert found >= 2


@pytest.mark.parametrize("path", MANIFESTS, ids=os.path.basename)
def test_each_pod_resolves_to_settings_without_a_conflict(path, tmp_path):
    """What seedcore-boot makes of each pod's environment as KubeRay v1.1.1 builds it, flags in any order."""
    docs = docs_of(path)
    for seed in range(3):
        op = operator.Operator(docs, seed=seed)
        for plan in [op.head()] + [op.worker(g["groupName"]) for g in op.spec["workerGroupSpecs"]]:
            env = dict(plan.containers[0].env)
            if "SEEDCORE_BOOT_CONFIG" in env:  # the ConfigMap, as the kubelet mounts it
                name = next(v["configMap"]["name"] for v in plan.volumes.values() if "configMap" in v)
                for key, text in op.config_map(name).items():
                    (tmp_path / key).write_text(text)
                env["SEEDCORE_BOOT_CONFIG"] = str(tmp_path / os.path.basename(env["SEEDCORE_BOOT_CONFIG"]))
            r = settings.resolve({}, env, role=plan.role)
            limits = plan.containers[0]
            assert r.platform.role == plan.role and r.sources["memory"] == kuberay.SOURCE
            assert r.settings.memory == limits.memory
            if plan.role == "worker":
                assert r.settings.head_address == f"{op.fqdn}:6379"
                assert r.settings.num_cpus == operator.value(str(limits.cpu))
            if plan.role == "head":  # KubeRay tags only the head with its CRD
                assert r.platform.rayservice == (op.crd == "RayService")
            if op.annotations.get(operator.FT) == "true":
                key = "storage_namespace" if plan.role == "head" else "head_lost_timeout"
                assert getattr(r.settings, key) == (op.uid if plan.role == "head" else 600)
