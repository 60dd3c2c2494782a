"""The environment our containers and pods set is also every `docker exec`/`kubectl exec` shell's: each variable is
audited in docs/docker.md ("The container's environment"), and none that Ray reads can be empty there."""

import glob
import os
import re

import pytest
import ray
import yaml

from seedcore_boot.config.settings import resolve
from seedcore_boot.node import rayenv
from tests import REPO

# The one Ray variable the compose files set on purpose: its effect (no usage statistics) is wanted in every shell.
RAY_WANTED_IN_COMPOSE = {"RAY_USAGE_STATS_ENABLED"}


def _pod_env(node, found):
    if isinstance(node, dict):
        for key in ("containers", "initContainers"):
            for container in node.get(key) or []:
                for var in container.get("env") or []:
                    found.append((var["name"], var.get("value")))  # None: valueFrom (a Secret)
        for value in node.values():
            _pod_env(value, found)
    elif isinstance(node, list):
        for value in node:
            _pod_env(value, found)


def set_variables():
    """(file, name, value) for every variable docker/ and deploy/kuberay/ set."""
    out = []
    for path in sorted(glob.glob(os.path.join(REPO, "docker", "*.yml"))):
        doc = yaml.safe_load(open(path)) or {}
        for service in (doc.get("services") or {}).values():
            env = service.get("environment") or {}
            assert isinstance(env, dict), f"{path}: environment as a mapping, so this audit reads it"
            out += [(os.path.basename(path), k, "" if v is None else str(v)) for k, v in env.items()]
    with open(os.path.join(REPO, "docker", "Dockerfile")) as f:
        for line in f:
            if re.match(r"\s*ENV\s", line):
                name, _, value = line.split(None, 1)[1].strip().partition("=")
                out.append(("Dockerfile", name, value))
    for path in sorted(glob.glob(os.path.join(REPO, "deploy", "kuberay", "*.yaml"))):
        found = []
        for doc in yaml.safe_load_all(open(path)):
            _pod_env(doc, found)
        out += [(os.path.basename(path), k, v) for k, v in found]
    return out


def audit_table():
    """{variable: reader column} from docs/docker.md's table."""
    text = open(os.path.join(REPO, "docs", "docker.md")).read()
    section = text.split("## The container's environment", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].startswith("`"):
            for name in re.findall(r"`([A-Za-z_][A-Za-z0-9_]*)`", cells[0]):
                rows[name] = cells[2]
    return rows


def ray_sources_naming(names):
    """The names that Ray 2.20.0's Python sources mention (outside its tests)."""
    root = os.path.dirname(ray.__file__)
    left, hits = set(names), set()
    for path in glob.glob(os.path.join(root, "**", "*.py"), recursive=True):
        if "/tests/" in path or not left:
            continue
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        for name in [n for n in left if n in text]:
            hits.add(name)
            left.discard(name)
    return hits


def can_be_empty(value):
    return value is not None and (value.strip() == "" or re.fullmatch(r"\$\{[A-Za-z_0-9]+:?-\}", value.strip()))


def test_every_variable_set_is_in_the_audit_table():
    table = audit_table()
    missing = sorted({f"{name} ({where})" for where, name, _ in set_variables() if name not in table})
    assert not missing, f"not in docs/docker.md's table of the container's environment: {missing}"


def test_no_variable_ray_reads_is_set_where_it_can_be_empty():
    variables = set_variables()
    table = audit_table()
    ray_reads = ray_sources_naming({n for _, n, _ in variables}) | {n for _, n, _ in variables if n.startswith("RAY_")}
    for where, name, value in variables:
        if name in ray_reads:
            assert "Ray" in table.get(name, ""), f"{name}: Ray reads it; the table must say so"
            assert not can_be_empty(value), f"{where} sets {name}={value!r}: Ray takes an empty variable as set"


def test_compose_files_pass_our_settings_under_our_names_only():
    """An exec shell in a compose container runs `ray` and drivers: Ray's names there only where wanted."""
    ray_names = {(where, name) for where, name, _ in set_variables()
                 if where.endswith(".yml") and name.startswith("RAY_") and name not in RAY_WANTED_IN_COMPOSE}
    assert not ray_names, sorted(ray_names)


def compose_env(path, service, shell_env):
    """A service's environment as compose gives it to the container: ${VAR:-default} from `shell_env`."""
    doc = yaml.safe_load(open(os.path.join(REPO, "docker", path)))
    sub = lambda m: shell_env.get(m.group(1)) or m.group(2)  # noqa: E731  (`:-`: unset or empty takes the default)
    return {k: re.sub(r"\$\{(\w+):-([^}]*)\}", sub, str(v))
            for k, v in doc["services"][service]["environment"].items()}


@pytest.mark.parametrize("path,service", [("docker-compose.yml", "ray-head"), ("ray-head-host.yml", "ray-head-host")])
def test_the_head_still_gets_the_redis_setting_and_passes_it_to_its_ray_only(path, service):
    on = resolve({}, compose_env(path, service, {"SEEDCORE_REDIS_ADDRESS": "redis:6379"}), role="head").settings
    assert on.redis_address == "redis:6379"
    assert rayenv.child_env(on, "head", {})["RAY_REDIS_ADDRESS"] == "redis:6379"
    off_env = compose_env(path, service, {})
    off = resolve({}, off_env, role="head").settings
    assert off.redis_address is None and "RAY_REDIS_ADDRESS" not in rayenv.child_env(off, "head", off_env)
