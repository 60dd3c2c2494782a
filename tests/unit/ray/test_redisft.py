"""GCS fault tolerance settings: the Redis address, the namespace rules, and a password never shown."""

import io
import json
import os
import subprocess
import sys

import pytest

from seedcore_boot.config import addresses
from seedcore_boot.config.settings import describe, resolve
from seedcore_boot.errors import BootError
from seedcore_boot.log import Log
from seedcore_boot.ray import redisft


@pytest.mark.parametrize("text, parsed", [("redis:6379", ("redis", 6379, False)),
                                          ("redis://10.0.0.5:6380", ("10.0.0.5", 6380, False)),
                                          ("rediss://cache.example:6379", ("cache.example", 6379, True)),
                                          ("[::1]:6379", ("::1", 6379, False))])
def test_redis_addresses_ray_takes(text, parsed):
    assert addresses.parse_redis_address(text) == parsed


@pytest.mark.parametrize("text", ["redis", "redis://:pw@host:6379", "http://host:6379", "host:0", "host:99999"])
def test_bad_redis_addresses_are_usage_errors(text):
    with pytest.raises(BootError) as err:
        addresses.parse_redis_address(text)
    assert err.value.exit_code == 2


def test_namespace_defaults_to_host_and_port_and_refuses_at():
    s = resolve({}, {"RAY_REDIS_ADDRESS": "redis:6379"}).settings
    assert s.storage_namespace == addresses.default_namespace(6379)
    assert addresses.default_namespace(6379, "ray-head") == "seedcore-ray-head-6379"
    with pytest.raises(BootError) as err:
        resolve({}, {"RAY_REDIS_ADDRESS": "redis:6379", "RAY_external_storage_namespace": "a@b"})
    assert err.value.exit_code == 2 and "'@'" in str(err.value)
    assert resolve({}, {}).settings.storage_namespace is None  # no Redis, no namespace


def test_password_and_password_file_are_one_or_the_other(tmp_path):
    secret = tmp_path / "pw"
    secret.write_text("from-file\n")
    s = resolve({"redis_password_file": str(secret)}, {"RAY_REDIS_ADDRESS": "r:6379"}).settings
    assert redisft.password(s) == "from-file"
    with pytest.raises(BootError):
        resolve({"redis_password_file": str(secret)}, {"REDIS_PASSWORD": "x", "RAY_REDIS_ADDRESS": "r:6379"})
    missing = resolve({"redis_password_file": str(tmp_path / "none")}, {}).settings
    with pytest.raises(BootError) as err:
        redisft.password(missing)
    assert "cannot read redis_password_file" in str(err.value) and err.value.exit_code == 1


ENV = {"RAY_REDIS_ADDRESS": "redis:6379", "REDIS_PASSWORD": "hunter2-secret"}


def _boot(*args, extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SEEDCORE_", "RAY_", "REDIS_"))}
    env.update(ENV, **(extra or {}))
    return subprocess.run([sys.executable, "-m", "seedcore_boot", *args], env=env, capture_output=True, text=True,
                          timeout=60)


def test_the_password_reaches_ray_but_no_output(own_node_env):
    dry = _boot("head", "--dry-run", extra=own_node_env)
    assert dry.returncode == 0, dry.stderr
    assert "hunter2" not in dry.stdout + dry.stderr and "--redis-password=***" in dry.stdout
    assert "RAY_REDIS_ADDRESS=redis:6379" in dry.stdout and "RAY_external_storage_namespace=seedcore-" in dry.stdout
    shown = _boot("config", "show", "--json")
    assert json.loads(shown.stdout)["redis_password"]["value"] == "***" and "hunter2" not in shown.stdout
    text = _boot("config", "show").stdout
    assert "hunter2" not in text
    resolved = resolve({}, ENV)
    assert [v for n, v, _ in describe(resolved) if n == "redis_password"] == ["***"]
    assert resolved.settings.redis_password == "hunter2-secret"  # the value itself is intact for Ray


def test_log_never_prints_a_secret_even_in_rays_lines():
    for fmt in ("text", "json"):
        out = io.StringIO()
        log = Log(fmt, stream=out, secrets=["hunter2"])
        log.ray("gcs_server --redis_password=hunter2 --port=6379")
        log.event("start", "argv ... --redis-password=hunter2")
        log.block("gcs_server.out", ["password hunter2"])
        assert "hunter2" not in out.getvalue() and "***" in out.getvalue()


def test_an_empty_redis_address_never_reaches_ray():
    """compose's `RAY_REDIS_ADDRESS: "${SEEDCORE_REDIS_ADDRESS:-}"` exports it empty; Ray 2.20 crashes on that."""
    from seedcore_boot.node.rayenv import child_env

    base = {"RAY_REDIS_ADDRESS": "", "RAY_external_storage_namespace": " ", "PATH": "/bin"}
    s = resolve({}, base).settings
    assert s.redis_address is None
    env = child_env(s, "head", base)
    assert "RAY_REDIS_ADDRESS" not in env and "RAY_external_storage_namespace" not in env and env["PATH"] == "/bin"
