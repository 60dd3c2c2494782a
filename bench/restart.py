"""A head's death and restart, with and without GCS fault tolerance (Redis), in the same run (formerly
bench/head_restart.py; about 3 minutes a rep, so it runs only when asked: `python -m bench --only restart`).

Three namespaced hosts on one emulated LAN: the head (10.200.0.1), a worker holding the Serve replica and a
proxy (10.200.0.2), Redis (10.200.0.3). A client on the worker's host calls the worker's proxy in a loop.
The head's whole host is killed, and 10 s later the same `seedcore-boot head` command runs again on a new
host with the same address. Without Redis the worker exits when its head is lost (head_lost_timeout 10 s)
and this restarts it, as a restart policy would; with Redis it has head_lost_timeout 120 s.

Measured: from the kill to the cluster healthy again (the new head ready, two nodes ALIVE, the application
RUNNING and answering on the worker's proxy), and the requests that failed meanwhile.  Needs Debian's
redis-server.
"""

import json
import sys
import threading
import time

from tests.e2e.test_redis import FT_SERVE, LOAD, PASSWORD
from tests.nshost import Lan

LOAD_SECONDS = 70


def alive_nodes(host):
    status, body = host.http("http://127.0.0.1:8265/nodes?view=summary")
    if status != 200:
        return 0
    return sum(n["raylet"]["state"] == "ALIVE" for n in json.loads(body)["data"]["summary"])


def one_rep(with_redis):
    network = Lan("br")
    host = network.host
    try:
        h1, h2 = host(1), host(2)
        env = {}
        if with_redis:
            h3 = host(3)
            h3.spawn(["redis-server", "--port", "6390", "--bind", "10.200.0.3", "--save", "", "--appendonly", "no",
                      "--protected-mode", "no", "--requirepass", PASSWORD]).wait_line("Ready to accept", 30)
            env = {"RAY_REDIS_ADDRESS": "10.200.0.3:6390", "REDIS_PASSWORD": PASSWORD,
                   "RAY_external_storage_namespace": "bench"}

        def start_head(h):
            h.write("/tmp/serve.yaml", FT_SERVE)
            return h.boot("head", "--node-ip-address", "10.200.0.1", "--num-cpus", "0", "--serve-config",
                          "/tmp/serve.yaml", "--serve-http-host", "0.0.0.0", env=env)

        worker_args = ["worker", "--address", "10.200.0.1:6379", "--num-cpus", "1", "--head-lost-timeout",
                       "120" if with_redis else "10", "--resources", '{"worker": 1}']
        workers = [h2.boot(*worker_args)]
        stop = threading.Event()

        def restart_policy():  # `restart: on-failure`: a worker that exits 1 is started again
            while not stop.is_set():
                if workers[-1].popen.poll() is not None:
                    workers.append(h2.boot(*worker_args))
                time.sleep(0.2)

        threading.Thread(target=restart_policy, daemon=True).start()
        head = start_head(h1)
        head.wait_line("head ready", 180)
        load = h2.spawn([sys.executable, "-c", LOAD, str(LOAD_SECONDS)])
        time.sleep(3)
        killed = time.monotonic()
        h1.close()
        head.kill()
        time.sleep(10)
        h1 = host(1)
        head = start_head(h1)
        head.wait_line("head ready", 240)
        while True:
            status, _ = h2.http("http://127.0.0.1:8000/health", timeout=2)
            if status == 200 and alive_nodes(h1) >= 2:
                break
            time.sleep(0.2)
        healthy = time.monotonic() - killed
        counts = json.loads(load.wait_line(lambda l: l.startswith("{"), LOAD_SECONDS + 60))
        stop.set()
        return healthy, counts, len(workers) - 1
    finally:
        network.close()


def declare(c):
    for key, what in (("redis", "with Redis"), ("noredis", "without Redis")):
        c.declare(f"restart.healthy_{key}", f"restart: head host killed, healthy again ({what})", "s",
                  "seedcore-boot head + worker")
        c.declare(f"restart.failed_{key}", f"restart: requests failed of ~1300 ({what})", "count",
                  "client on the worker's proxy")


def run(c, reps, log):
    declare(c)
    for i in range(reps):
        for with_redis in (False, True):  # alternate, so drift hits both alike
            key = "redis" if with_redis else "noredis"
            try:
                healthy, counts, restarts = one_rep(with_redis)
            except Exception as exc:
                log(f"restart rep {i + 1} {key}: FAILED: {exc}")
                continue
            c.add(f"restart.healthy_{key}", "ours", healthy)
            c.add(f"restart.failed_{key}", "ours", counts["failed"])
            log(f"restart rep {i + 1} {'with' if with_redis else 'without'} Redis: healthy again {healthy:.1f} s "
                f"after the kill; requests {counts['failed']} failed of {counts['ok'] + counts['failed']}; "
                f"worker restarted {restarts} time(s)")
