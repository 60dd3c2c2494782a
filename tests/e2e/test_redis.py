"""A head with GCS fault tolerance against a real Redis (Debian's redis-server) on its throwaway host."""

import json
import shutil
import signal
import sys
import time

import pytest

from tests.skips import need

pytestmark = pytest.mark.e2e
BOOT = [sys.executable, "-m", "seedcore_boot"]
REDIS = "127.0.0.1:6390"
PASSWORD = "s3cret-redis-pw"


@pytest.fixture
def redis(host):
    need(shutil.which("redis-server"), "needs redis-server (Debian's redis-server)")
    proc = host.spawn(["redis-server", "--port", "6390", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                       "--requirepass", PASSWORD])
    proc.wait_line("Ready to accept connections", timeout=30)

    def cli(*args):
        out = host.run(["redis-cli", "-p", "6390", "-a", PASSWORD, "--no-auth-warning", *args])
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    return cli


def head(host, *args, password=PASSWORD, ns="cluster-a"):
    env = {"RAY_REDIS_ADDRESS": REDIS, "RAY_external_storage_namespace": ns}
    if password:
        env["REDIS_PASSWORD"] = password
    return host.boot("head", "--no-serve", *args, env=env)


def ready_then_stop(proc):
    proc.wait_line("head ready", timeout=120)
    proc.signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    return proc.output


def test_redis_unreachable_is_one_line_and_ray_never_starts(host):
    proc = head(host)
    assert proc.wait(30) == 1
    errors = [l for l in proc.output.splitlines() if l.startswith("seedcore-boot: error:")]
    assert len(errors) == 1 and f"Redis {REDIS} is not reachable" in errors[0], proc.output
    assert "ray |" not in proc.output and "Traceback" not in proc.output and host.processes() == []


def test_wrong_password_is_one_line_and_ray_never_starts(host, redis):
    proc = head(host, password="not-it")
    assert proc.wait(30) == 1
    assert f"Redis {REDIS} refused the password" in proc.output.split("seedcore-boot: error:")[-1], proc.output
    assert "ray |" not in proc.output and "not-it" not in proc.output
    assert [p.info["name"] for p in host.processes()] == ["redis-server"]


def test_recovery_is_said_and_fresh_removes_only_our_namespace(host, redis):
    first = ready_then_stop(head(host))
    assert "no earlier cluster in Redis" in first and PASSWORD not in first
    assert int(redis("HLEN", "cluster-a")) > 0
    redis("HSET", "cluster-b", "k", "v")  # another cluster's state in the same Redis

    again = ready_then_stop(head(host))
    assert "recovering cluster state from Redis 127.0.0.1:6390, namespace 'cluster-a'" in again

    fresh = head(host, "--redis-fresh")
    fresh.wait_line("head ready", timeout=120)
    # Ray 2.20 puts the password on gcs_server's command line (documented); our output never shows it.
    gcs, = host.find("gcs_server")
    assert f"--redis_password={PASSWORD}" in " ".join(gcs.cmdline())
    fresh.signal(signal.SIGTERM)
    assert fresh.wait(30) == 0
    assert "removed the cluster state of namespace 'cluster-a'" in fresh.output
    assert "no earlier cluster in Redis" in fresh.output and PASSWORD not in fresh.output
    assert redis("HGET", "cluster-b", "k") == "v"


FT_SERVE = """
proxy_location: EveryNode
applications:
  - name: ml
    route_prefix: /
    import_path: seedcore_boot.ml_app:app
    deployments:
      - name: Classifier
        num_replicas: 1
        ray_actor_options: {num_cpus: 0, resources: {worker: 0.01}}  # on the worker, never the head
        user_config: {weights: [1.0, -1.0], bias: 0.0, labels: [negative, positive], threshold: 0.5,
                      version: default}
"""

ACTOR = r"""
import json, sys, ray
ray.init(address="10.200.0.1:6379", namespace="ft", logging_level="ERROR", log_to_driver=False)
@ray.remote(num_cpus=0, resources={"worker": 0.01}, max_restarts=0)
class Counter:
    def __init__(self):
        self.n = 0
    def incr(self):
        self.n += 1
        return self.n, ray.get_runtime_context().get_node_id()
if sys.argv[1] == "create":
    c = Counter.options(name="counter", lifetime="detached").remote()
    print(json.dumps([ray.get(c.incr.remote()) for _ in range(5)][-1]))
else:
    c = ray.get_actor("counter")  # held: a method of a temporary handle loses its actor
    print(json.dumps(ray.get(c.incr.remote())))
"""

LOAD = r"""
import json, sys, time, urllib.request
end = time.monotonic() + float(sys.argv[1])
ok = failed = 0
while time.monotonic() < end:
    try:
        with urllib.request.urlopen("http://127.0.0.1:8000/health", timeout=5) as r:
            ok += r.status == 200
            failed += r.status != 200
    except Exception:
        failed += 1
    time.sleep(0.05)
print(json.dumps({"ok": ok, "failed": failed}), flush=True)
"""


def test_a_head_restart_loses_nothing(lan, tmp_path):
    """The issue's measurement through seedcore-boot: Redis host, head, worker with the Serve replica and a
    proxy, a detached actor with state on the worker; the head's host killed, the same head command run
    again on the same address. The worker never exits, the actor keeps its state, the app stays up."""
    need(shutil.which("redis-server"), "needs redis-server (Debian's redis-server)")
    h1, h2, h3 = lan(1), lan(2), lan(3)
    redis_proc = h3.spawn(["redis-server", "--port", "6390", "--bind", "10.200.0.3", "--save", "",
                           "--appendonly", "no", "--protected-mode", "no", "--requirepass", PASSWORD])
    redis_proc.wait_line("Ready to accept connections", timeout=30)
    env = {"RAY_REDIS_ADDRESS": "10.200.0.3:6390", "REDIS_PASSWORD": PASSWORD,
           "RAY_external_storage_namespace": "ft-cluster"}

    def start_head(host):
        host.write("/tmp/serve.yaml", FT_SERVE)
        proc = host.boot("head", "--node-ip-address", "10.200.0.1", "--num-cpus", "0", "--serve-config",
                         "/tmp/serve.yaml", "--serve-http-host", "0.0.0.0", env=env)
        proc.wait_line("head ready", timeout=180)
        return proc

    # The worker first: the head is ready only once the app's replica, which lives on the worker, answers.
    worker = h2.boot("worker", "--address", "10.200.0.1:6379", "--num-cpus", "1", "--head-lost-timeout", "120",
                     "--resources", '{"worker": 1}')
    worker.wait_line("waiting for the head", timeout=60)
    head = start_head(h1)
    worker.wait_line("worker ready", timeout=180)
    created = h2.python(ACTOR, "create", timeout=120)
    assert created.returncode == 0, created.stderr[-2000:]
    count, actor_node = json.loads(created.stdout.strip().splitlines()[-1])
    assert count == 5
    status, _ = h2.http("http://127.0.0.1:8000/health", timeout=30)  # the worker's own proxy
    for _ in range(60):
        if status == 200:
            break
        time.sleep(1)
        status, _ = h2.http("http://127.0.0.1:8000/health")
    assert status == 200, h1.http("http://127.0.0.1:8265/api/serve/applications/")[1][-2000:]

    replica_before = json.loads(h2.http("http://127.0.0.1:8000/health")[1])["replica"]["id"]
    load = h2.spawn([sys.executable, "-c", LOAD, "45"])
    time.sleep(3)
    h1.close()  # the head's whole host dies
    head.kill()
    time.sleep(10)
    h1 = lan(1)  # a new host on the same address
    head = start_head(h1)
    assert "recovering cluster state from Redis 10.200.0.3:6390, namespace 'ft-cluster'" in head.output
    counts = json.loads(load.wait_line(lambda l: l.startswith("{"), timeout=120))
    print(f"requests to the worker's proxy through the head's restart: {counts}")
    assert counts["failed"] == 0 and counts["ok"] > 100, counts  # docs/fault-tolerance.md: none failed

    assert worker.popen.poll() is None, worker.output_tail()  # the worker never exited
    again = h2.python(ACTOR, "get", timeout=120)
    assert again.returncode == 0, again.stderr[-2000:]
    assert json.loads(again.stdout.strip().splitlines()[-1]) == [6, actor_node]  # same state, same node
    out = h1.run([*BOOT, "serve", "status", "--json"])
    assert json.loads(out.stdout)["applications"]["ml"]["status"] == "RUNNING", out.stdout
    # The new head PUT the same config again: Serve kept the very replica (no redeploy, nothing failed).
    assert "deploying 1 Serve application(s)" in head.output
    assert json.loads(h2.http("http://127.0.0.1:8000/health")[1])["replica"]["id"] == replica_before

    worker.signal(signal.SIGTERM)
    assert worker.wait(60) == 0
    head.signal(signal.SIGTERM)
    assert head.wait(60) == 0
