"""The firewall list comes from the port plan: every planned port is in it once, and docs/docker-hosts.md shows
exactly what `check-ports --firewall` prints with the settings the multi-host compose files give."""

import os
import re

import pytest
import yaml

from seedcore_boot.config.settings import resolve
from seedcore_boot.host import firewall, ports, reach
from seedcore_boot.node.plan import make_plan
from tests import REPO

DOCS = os.path.join(REPO, "docs", "docker-hosts.md")
FILES = {"head": ("ray-head-host.yml", "ray-head-host"), "worker": ("ray-workers-host.yml", "ray-worker-host")}
_VAR = re.compile(r"\$\{(\w+)(?::([-?])([^}]*))?\}")


def compose_environment(role, given=None):
    """The environment a container of the shipped file gets: the Dockerfile's ENV, then the service's
    `environment:` interpolated as compose does it, from `given` (else each variable's default)."""
    given = given or {}
    env = {}
    with open(os.path.join(REPO, "docker", "Dockerfile"), encoding="utf-8") as fh:
        for line in fh:
            m = re.match(r"ENV (\w+)=(\S+)", line)
            if m:
                env[m.group(1)] = m.group(2)
    path, service = FILES[role]
    with open(os.path.join(REPO, "docker", path), encoding="utf-8") as fh:
        spec = yaml.safe_load(fh)["services"][service]["environment"]

    def value(m):
        name, op, default = m.groups()
        if name in given:
            return given[name]
        assert op != "?", f"{path} requires {name}: give it"
        return default or ""

    env.update({k: _VAR.sub(value, str(v)) for k, v in spec.items()})
    return env


def firewall_text(role, env):
    plan = make_plan(resolve({}, env, role=role), role, host_checks=False)
    return firewall.text(plan.ports, plan.settings, role)


def test_every_port_a_plan_can_hold_says_who_reaches_it_and_what_it_allows():
    names = {name for name, _, _, _ in ports._PLAN} | {"serve_grpc"}
    assert names == set(reach.PORTS)


@pytest.mark.parametrize("role", ["head", "worker"])
def test_every_planned_port_is_listed_once_open_or_said_why_not(role):
    env = compose_environment(role, {"SEEDCORE_HEAD_ADDRESS": "10.0.0.5:6379"})
    plan = make_plan(resolve({}, env, role=role), role, host_checks=False)
    open_, closed = firewall.rows(plan.ports, plan.settings, role)
    listed = [int(p.split("/")[0]) for p, _, _ in open_ if "-" not in p]
    listed += [int(re.search(r" (?:\S+:)?(\d+)$", name).group(1)) for name, _ in closed]
    assert sorted(listed) == sorted(p.port for p in plan.ports)
    assert ("10002-19999/tcp", reach.EVERY) in [(p, who) for p, who, _ in open_]


def test_a_dashboard_on_loopback_is_not_to_open_and_on_all_interfaces_is_for_users():
    def dashboard(host):
        plan = make_plan(resolve({"dashboard_host": host}, {}, role="head"), "head", host_checks=False)
        open_, closed = firewall.rows(plan.ports, plan.settings, "head")
        return [who for p, who, _ in open_ if p == "8265/tcp"], [n for n, _ in closed if n.startswith("dashboard ")]

    assert dashboard("127.0.0.1") == ([], ["dashboard 127.0.0.1:8265"])
    assert dashboard("0.0.0.0") == ([reach.USERS], [])


@pytest.mark.parametrize("role", ["head", "worker"])
def test_the_docs_list_is_the_generated_one(role):
    """The blocks in docs/docker-hosts.md, as the files' containers print them (the e2e test runs the doc's
    command in one); regenerate with that command when the plan changes."""
    expected = firewall_text(role, compose_environment(role, {"SEEDCORE_HEAD_ADDRESS": "10.0.0.5:6379"}))
    with open(DOCS, encoding="utf-8") as fh:
        assert f"```text\n{expected}\n```" in fh.read(), f"docs/docker-hosts.md should show:\n{expected}"
