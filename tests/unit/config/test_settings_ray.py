"""The "In Ray" column cannot lie: each setting's `ray` text (config/fields.py) against the `ray start` argv, the
environment and the Serve config that node.plan.make_plan really builds from it (raycmd, rayenv, serve).

For every setting, on each kind of node: a plan with the setting at another value than its default, against
one without. What changed must be exactly what the text names in backticks (`ray start --flag`, a variable,
`http_options.key` of the Serve config), carrying the new value; a setting that names nothing ("ours")
changes nothing, and neither does any setting on a node it does not apply to."""

import sys

import pytest

from seedcore_boot import docgen
from seedcore_boot.config.fields import FIELDS
from seedcore_boot.config.settings import resolve
from seedcore_boot.node import rayenv
from seedcore_boot.node.plan import make_plan

RAY = [sys.executable, "-m", "seedcore_boot.ray.raycli"]  # Ray beside our Python, as find_ray runs it here
ROLES = ("head", "worker")
# What every `ray start` gets whatever the settings (docgen.always_passed says these on the page).
FIXED_FLAGS = {"--head", "--block", "--log-color", "--include-dashboard"}
FIXED_ENV = {"PYTHONUNBUFFERED", *rayenv.RAY_DEFAULTS}

REDIS = {"redis_address": "10.0.0.5:6379"}
CA = {"tls_ca_cert": "/ca/ca.crt", "tls_ca_key": "/ca/ca.key"}
TLS = dict(CA, tls=True)
OWN_PAIR = dict(TLS, tls_cert="/a/node.crt", tls_key="/a/node.key")
# Settings that act only beside others: the others are set in both plans.
CONTEXT = {
    "redis_password": REDIS, "redis_password_file": REDIS, "storage_namespace": REDIS, "redis_fresh": REDIS,
    "tls": CA, "tls_ca_cert": TLS, "tls_ca_key": TLS, "tls_dns_names": TLS, "tls_expiry_margin_days": TLS,
    "tls_cert": OWN_PAIR, "tls_key": OWN_PAIR,
}
# Values where the kind alone does not say one (strings), or the context already holds the kind's.
VALUES = {
    "head_address": "10.9.9.9:6379", "redis_address": "10.0.0.6:6380", "storage_namespace": "ns-test",
    "serve_app": "my_pkg.app:app", "serve_health_route": "/ok", "tls_dns_names": "ray-head",
    "redis_password": "s3cret", "tls_ca_cert": "/other/ca.crt", "tls_ca_key": "/other/ca.key",
    "tls_cert": "/b/node.crt", "tls_key": "/b/node.key", "min_worker_port": 10500, "max_worker_port": 19000,
    "resources": '{"accel": 1}', "ray_args": ("--storage=/data",),
    "serve_config": {"applications": [{"name": "other", "route_prefix": "/other", "import_path": "my_pkg.app:app"}]},
}


def other_value(name, index, tmp_path):
    f = FIELDS[name]
    kind, default = f.metadata["kind"], f.default
    if name == "redis_password_file":
        path = tmp_path / "redis-password"
        path.write_text("from-the-file\n")
        return str(path)
    if name in VALUES:
        return VALUES[name]
    if kind == "port":
        return 30000 + index  # clashes with no other planned port
    if kind == "bool":
        return not default
    if kind == "count":
        return (default or 0) + 3
    if kind == "seconds":
        return default + 7.5
    if kind == "bytes":
        return "1gb"
    if kind in ("ip", "host"):
        return "10.1.2.3"
    if kind == "abspath":
        return f"/srv/{name}"
    if kind.startswith("choice:"):
        return next(c for c in kind.split(":", 1)[1].split(",") if c != default)
    raise AssertionError(f"no test value for {name} (kind {kind}): add one to VALUES")


def plan(values, role):
    resolved = resolve(values, {}, role=role)
    address = resolved.settings.head_address or "10.0.0.9:6379"  # cli.worker passes --address from head_address
    return make_plan(resolved, role, address=address, ray=RAY, host_checks=False)


def argv_flags(argv):
    return {a.split("=", 1)[0]: a for a in argv[argv.index("start") + 1:]}


def changed(before, after):
    return {k for k in set(before) | set(after) if before.get(k) != after.get(k)}


# A setting of both roles whose flag only a head is given (its ray text says so).
HEAD_ONLY_FLAG = {("temp_dir", "worker"): "Ray 2.20 ignores a worker's --temp-dir (raytemp.py)"}
CASES = [(name, i) for i, name in enumerate(FIELDS)]


@pytest.mark.parametrize("name,index", CASES, ids=[c[0] for c in CASES])
def test_in_ray_names_exactly_what_the_setting_changes(name, index, tmp_path):
    meta = FIELDS[name].metadata
    assert meta["ray"], f"{name} has no ray= text in config/fields.py"
    claims = docgen.ray_claims(meta["ray"])
    context = CONTEXT.get(name, {})
    value = other_value(name, index, tmp_path)
    for role in ROLES:
        before, after = plan(context, role), plan(dict(context, **{name: value}), role)
        flags_before, flags_after = argv_flags(before.argv), argv_flags(after.argv)
        flags = changed(flags_before, flags_after)
        env = changed(before.env_additions, after.env_additions)
        if role not in meta["roles"]:
            assert not flags and not env, f"{name} applies to {meta['roles']} only but changes a {role}'s " \
                                          f"{sorted(flags | env)}"
            continue
        if name == "ray_args":
            assert after.argv[-len(value):] == list(value) and flags == {"--storage"}
            continue
        if (name, role) in HEAD_ONLY_FLAG:
            assert not flags and not env, f"{name} changes a worker's {sorted(flags | env)}: " \
                                          f"{HEAD_ONLY_FLAG[name, role]}"
            continue
        assert flags == set(claims.flags), f"{name} on a {role} changes ray start {sorted(flags)}; " \
                                           f"its ray text names {claims.flags}"
        assert env == set(claims.env), f"{name} on a {role} changes env {sorted(env)}; its ray text names {claims.env}"
        if meta["kind"] == "bool" or not any(claims):  # a switch's value is its flag; ours: nothing to carry
            continue
        shown = str(getattr(after.settings, name))
        if name == "redis_password_file":
            shown = "from-the-file"  # what Ray gets is the file's content
        carried = [flags_after[f].split("=", 1)[-1] for f in flags] + [after.env_additions[v] for v in env]
        if role == "head":
            carried += [str(after.serve["http_options"][key.split(".", 1)[1]]) for key in claims.serve]
        assert shown in carried, f"{name}={shown} is not what Ray gets: {carried}"


@pytest.mark.parametrize("name", list(FIELDS))
def test_a_setting_that_names_nothing_in_ray_is_ours(name):
    text = FIELDS[name].metadata["ray"]
    if name != "ray_args" and not any(docgen.ray_claims(text)):
        assert text.startswith("ours"), f"{name}: {text!r} names nothing Ray gets, so say ours (settings.OURS)"
    if text.startswith("ours"):
        assert not any(docgen.ray_claims(text)), f"{name}: ours, yet it names {docgen.ray_claims(text)}"


def test_everything_ray_gets_is_named_by_a_setting_or_always_passed(tmp_path):
    claimed = [docgen.ray_claims(f.metadata["ray"]) for f in FIELDS.values()]
    flags = {f for c in claimed for f in c.flags} | FIXED_FLAGS
    env = {v for c in claimed for v in c.env} | FIXED_ENV
    seen_flags, seen_env = set(), set()
    for values in ({}, REDIS, TLS, OWN_PAIR, {**REDIS, "redis_password": "x", "monitor": False}):
        for role in ROLES:
            p = plan(values, role)
            seen_flags |= set(argv_flags(p.argv))
            seen_env |= set(p.env_additions)
    assert seen_flags <= flags, f"ray start gets {sorted(seen_flags - flags)}, which no setting's ray text names"
    assert seen_env <= env, f"Ray's environment gets {sorted(seen_env - env)}, which no setting's ray text names"


def test_the_page_says_what_is_always_passed():
    head, worker, env = docgen.always_passed()
    assert {a.split("=", 1)[0] for a in head} == FIXED_FLAGS
    assert {a.split("=", 1)[0] for a in worker} == FIXED_FLAGS - {"--head", "--include-dashboard"}
    assert {k for k, _, _ in env} == FIXED_ENV
