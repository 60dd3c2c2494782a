"""Mutual TLS across emulated hosts (#19): a head and two workers from one CA, what reaches them with and
without a certificate, a worker of another CA, and certificates refused before Ray starts. Every request is
sent from inside a host of the test's LAN (tests/nshost.py)."""

import datetime
import json
import os
import re
import signal
import stat
import sys
import time

import pytest

from seedcore_boot.tls import certs
from tests.e2e.test_worker import wait_for_states

pytestmark = pytest.mark.e2e
BOOT = [sys.executable, "-m", "seedcore_boot"]
RAY = os.path.join(os.path.dirname(sys.executable), "ray")
HEAD_IP = "10.200.0.1"
HEAD = f"{HEAD_IP}:6379"
CA_DIR = "/tmp/ca"  # in each host's private /tmp: a secret mounted there
TLS = {"SEEDCORE_BOOT_TLS": "1", "SEEDCORE_BOOT_TLS_CA_CERT": f"{CA_DIR}/ca.crt",
       "SEEDCORE_BOOT_TLS_CA_KEY": f"{CA_DIR}/ca.key"}
HANG = 120  # s: a deadline only a worker that retries a refused handshake (with --wait-timeout 0: forever) reaches
PORTS = {"gcs": 6379, "node_manager": 6380, "object_manager": 6381, "dashboard_agent_grpc": 6383, "client": 10001}

JOB = r"""
import json, ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy as On
ray.init()
nodes = [n["NodeID"] for n in ray.nodes() if n["Alive"]]
@ray.remote(num_cpus=0)
def where(blob):
    return ray.util.get_node_ip_address(), len(blob)
blob = ray.put(b"x" * 2_000_000)  # fetched by every node through its object manager: TLS between nodes
print("RESULT", json.dumps(sorted(ray.get([where.options(scheduling_strategy=On(n, soft=False)).remote(blob)
                                          for n in nodes]))))
"""

CLIENT = r"""
import ray
ray.init("ray://10.200.0.1:10001", logging_level="ERROR")
@ray.remote
def double(x):
    return 2 * x
print("CLIENT", ray.get(double.remote(21)), sum(1 for n in ray.nodes() if n["Alive"]))
"""

# From a host of the LAN to the head's gRPC ports: a plain gRPC call; a TLS handshake without a certificate;
# the same with the cluster's client certificate, which must get the server's HTTP/2 SETTINGS frame (so a
# port that refuses both is refusing the missing certificate, not everything).
PROBE = r"""
import grpc, json, socket, ssl, sys
ip, ca, cert, key = sys.argv[1:5]
def tls(with_cert, port):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.set_alpn_protocols(["h2"])
    ctx.load_verify_locations(ca)
    if with_cert:
        ctx.load_cert_chain(cert, key)
    with socket.create_connection((ip, port), timeout=5) as raw, ctx.wrap_socket(raw) as conn:
        conn.settimeout(5)
        conn.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        try:
            frame = conn.recv(9)
        except OSError:
            frame = b""
    return len(frame) >= 4 and frame[3] == 4
out = {}
for port in map(int, sys.argv[5:]):
    try:
        grpc.insecure_channel(f"{ip}:{port}").unary_unary("/ray.rpc.NodeInfoGcsService/CheckAlive")(b"", timeout=5)
        plain = "answered"
    except grpc.RpcError as exc:
        plain = f"{exc.code().name}: {exc.details()}"
    out[port] = {"plain": plain, "no_cert": tls(False, port), "cert": tls(True, port)}
print(json.dumps(out))
"""


def give_ca(host, ca):
    """The CA's files in the host, the key readable by its owner only (as a mounted secret should be)."""
    host.write(f"{CA_DIR}/ca.crt", certs.cert_pem(ca[0]).decode())
    host.write(f"{CA_DIR}/ca.key", certs.key_pem(ca[1]).decode())
    os.chmod(host.path(f"{CA_DIR}/ca.key"), 0o600)


def key_lines(pem):
    """The base64 lines of a PEM key: any of them in an output would be key material leaking."""
    return [l for l in pem.splitlines() if l and not l.startswith("-----")]


def one_error(proc):
    errors = [l for l in proc.output.splitlines() if l.startswith("seedcore-boot: error:")]
    assert len(errors) == 1, proc.output_tail()
    assert "Traceback" not in proc.output and "ray |" not in proc.output, proc.output_tail()
    return errors[0]


def test_a_tls_cluster_on_three_hosts(lan):
    ca, other_ca = certs.make_ca("e2e cluster CA", 30), certs.make_ca("another CA", 30)
    h1, h2, h3 = lan(1), lan(2), lan(3)
    for h in (h1, h2, h3):
        give_ca(h, ca)
    head = h1.boot("head", "--node-ip-address", HEAD_IP, "--num-cpus", "1", env=TLS)
    head.wait_line("head ready", timeout=240)
    workers = [h.boot("worker", "--address", HEAD, "--num-cpus", "1", env=TLS) for h in (h2, h3)]
    for w in workers:
        w.wait_line("worker ready", timeout=180)
    every = {"10.200.0.1": "ALIVE", "10.200.0.2": "ALIVE", "10.200.0.3": "ALIVE"}
    assert wait_for_states(h1, every) == every
    for proc, name in ((head, "head"), (workers[0], "worker")):
        line = proc.wait_line("issued this node's certificate", timeout=1)
        assert "mutual TLS on every gRPC port" in line and "127.0.0.1" in line and "localhost" in line

    # Our own GCS calls under TLS (the version check at join; the node lookup a drain makes), with the variables
    # `tls env` gives a driver on a node.
    node_env = h2.run([*BOOT, "tls", "env"], env=TLS)
    assert node_env.returncode == 0, node_env.stdout + node_env.stderr
    node_env = dict(l[len("export "):].split("=", 1) for l in node_env.stdout.splitlines())
    assert node_env["RAY_TLS_SERVER_KEY"] == "/tmp/ray/seedcore-boot/tls/worker-6380.key"
    calls = h2.python("import json, os\nfrom seedcore_boot.ray import gcsprobe\ngcsprobe.use_tls(os.environ)\n"
                      f"print(json.dumps([gcsprobe.cluster_versions('{HEAD_IP}', 6379), "
                      f"gcsprobe.node_id('{HEAD_IP}', 6379, '10.200.0.2', 6380)]))", env=node_env)
    versions, node_id = json.loads(calls.stdout)
    assert versions[0] == "2.20.0" and re.fullmatch(r"[0-9a-f]{56}", node_id or ""), calls.stdout + calls.stderr

    # A job, through the Jobs API (plain HTTP on the head's loopback); its driver and tasks speak TLS.
    for h in (h1, h2, h3):
        h.write("/tmp/job.py", JOB)
    job = h1.run([RAY, "job", "submit", "--address", "http://127.0.0.1:8265", "--", "python", "/tmp/job.py"],
                 timeout=240)
    assert job.returncode == 0, job.stdout[-3000:] + job.stderr[-3000:]
    result = json.loads(re.search(r"RESULT (.*)", job.stdout).group(1))
    assert result == [["10.200.0.1", 2_000_000], ["10.200.0.2", 2_000_000], ["10.200.0.3", 2_000_000]]

    # The Serve application answers (the default one, on the head).
    status, body = h1.http("http://127.0.0.1:8000/health")
    assert status == 200 and json.loads(body)["status"] == "ok", body

    # A ray:// client elsewhere, with a certificate of the cluster's CA made by `tls issue`.
    issued = h3.run([*BOOT, "tls", "issue", "/tmp/client", "--ca-dir", CA_DIR, "--name", "laptop"])
    assert issued.returncode == 0, issued.stdout + issued.stderr
    client_env = dict(l[len("export "):].split("=", 1) for l in issued.stdout.splitlines() if l.startswith("export "))
    assert sorted(client_env) == ["RAY_TLS_CA_CERT", "RAY_TLS_SERVER_CERT", "RAY_TLS_SERVER_KEY", "RAY_USE_TLS"]
    out = h3.python(CLIENT, env=client_env, timeout=180)
    if "Starting Ray client server failed" in out.stderr:
        # Ray's client proxy could not start the client's own server (seen twice this round: once at load 27,
        # once in a full CI run; alone it passed): print why, from the head's log, and try once more; a refused certificate
        # fails the same way twice.
        print("ray:// first try:", h1.run(["sh", "-c", "tail -n 30 /tmp/ray/session_latest/logs/"
                                                      "ray_client_server_23000.err"]).stdout)
        out = h3.python(CLIENT, env=client_env, timeout=180)
    assert "CLIENT 42 3" in out.stdout, out.stdout[-2000:] + out.stderr[-3000:]

    # Without a certificate nothing gets in, on every gRPC port named by the issue.
    probe = h3.python(PROBE, HEAD_IP, f"{CA_DIR}/ca.crt", client_env["RAY_TLS_SERVER_CERT"],
                      client_env["RAY_TLS_SERVER_KEY"], *PORTS.values(), timeout=120)
    assert probe.returncode == 0, probe.stderr[-2000:]
    seen = json.loads(probe.stdout)
    for name, port in PORTS.items():
        got = seen[str(port)]
        assert got["plain"].startswith("UNAVAILABLE") and got["no_cert"] is False, (name, got)
        assert got["cert"] is True, (name, got)  # the port is up and talks to a client of the cluster

    # The exposure report: at ready in the log, and measured again by `status --json`.
    assert re.search(r"\[exposure [^]]*\] \*:6379 GCS \(gcs_server, pid \d+\): mutual TLS", head.output)
    assert re.search(r"\[exposure [^]]*\] \*:52365 dashboard agent HTTP .*: no TLS: anyone who reaches it can submit "
                     r"jobs", head.output), head.output_tail()
    status = h1.run([*BOOT, "status", "--json"], env=TLS)
    assert status.returncode == 0, status.stdout + status.stderr
    exposed = {l["port"]: l for l in json.loads(status.stdout)["exposure"]}
    for name, port in PORTS.items():
        assert exposed[port]["name"] == name and exposed[port]["tls"] is True, exposed[port]
    assert exposed[52365]["tls"] is False and "run code" in exposed[52365]["anonymous"]
    assert exposed[8080]["name"] == "metrics_export" and exposed[8080]["tls"] is False
    assert 8265 not in exposed  # the dashboard stays on 127.0.0.1

    # A worker whose CA is another: one line naming the cause, exit 1 at once, nothing left of it.
    h4 = lan(4)
    give_ca(h4, other_ca)
    t = time.monotonic()
    stranger = h4.boot("worker", "--address", HEAD, "--num-cpus", "1", "--wait-timeout", "0", env=TLS)
    rc = stranger.wait(timeout=HANG)
    print(f"the worker of another CA exited {rc} after {time.monotonic() - t:.1f} s")
    assert rc == 1 and "still waiting" not in stranger.output, stranger.output_tail()  # no retry: said why at once
    error = one_error(stranger)
    assert f"the TLS handshake with the head at {HEAD} ({HEAD_IP}) failed" in error, error
    assert "different CAs" in error and "same CA" in error, error
    assert h4.processes() == []
    # And one without TLS at all: told that the head speaks TLS.
    h5 = lan(5)
    plain = h5.boot("worker", "--address", HEAD, "--num-cpus", "1", "--wait-timeout", "0")
    assert plain.wait(timeout=HANG) == 1 and "still waiting" not in plain.output, plain.output_tail()
    assert "the head speaks mutual TLS and this node does not" in one_error(plain)
    assert h5.processes() == []

    # The keys: 0600 and owned by the node's user, in a 0700 directory; no key in any output, log or argv.
    keys = [certs.key_pem(ca[1]).decode(), h3.read("/tmp/client/laptop.key")]
    for h, path in ((h1, "/tmp/ray/seedcore-boot/tls/head-6380.key"), (h2, "/tmp/ray/seedcore-boot/tls/worker-6380.key"),
                    (h3, "/tmp/ray/seedcore-boot/tls/worker-6380.key")):
        for p in (path, path[:-4] + ".crt"):
            st = os.stat(h.path(p))
            assert stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == os.getuid(), (p, oct(st.st_mode))
        assert stat.S_IMODE(os.stat(h.path(os.path.dirname(path))).st_mode) == 0o700
        keys.append(h.read(path))
    texts = [p.output for p in (head, *workers, stranger, plain)] + [status.stdout, job.stdout, job.stderr,
                                                                     out.stdout, out.stderr, issued.stdout]
    texts += [h1.run([*BOOT, "config", "show"], env=TLS).stdout, h1.run([*BOOT, "head", "--dry-run"], env=TLS).stdout]
    for h in (h1, h2, h3):
        texts.append(h.run(["sh", "-c", "cat /tmp/ray/session_latest/logs/* 2>/dev/null"], timeout=120).stdout)
        texts += [" ".join(p.cmdline()) for p in h.processes() if p.is_running()]
    for key in keys:
        for line in key_lines(key):
            assert not any(line in text for text in texts), "key material in an output"

    # A clean stop, and the node's issued key and certificate go with it.
    for w in workers:
        w.signal(signal.SIGTERM)
    assert [w.wait(60) for w in workers] == [0, 0]
    head.signal(signal.SIGTERM)
    assert head.wait(60) == 0
    assert not os.path.exists(h1.path("/tmp/ray/seedcore-boot/tls/head-6380.key"))
    assert h1.processes() == [] and h2.processes() == [] and h3.processes() == []


def _user_cert(host, ca, names, at=None, days=30):
    cert, key = certs.issue(*ca, names, days, "given", at=at)
    host.write("/tmp/given/node.crt", certs.cert_pem(cert).decode())
    host.write("/tmp/given/node.key", certs.key_pem(key).decode())
    os.chmod(host.path("/tmp/given/node.key"), 0o600)
    return {**TLS, "SEEDCORE_BOOT_TLS_CERT": "/tmp/given/node.crt", "SEEDCORE_BOOT_TLS_KEY": "/tmp/given/node.key"}


@pytest.mark.parametrize("case", ["expired", "misses the address"])
def test_a_certificate_that_cannot_work_is_refused_before_ray_starts(lan, case):
    ca = certs.make_ca("e2e cluster CA", 30)
    h1 = lan(1)
    give_ca(h1, ca)
    if case == "expired":
        env = _user_cert(h1, ca, ["127.0.0.1", "localhost", HEAD_IP], at=certs.now() - datetime.timedelta(days=40),
                         days=30)
        words = "expired on"
    else:
        env = _user_cert(h1, ca, ["127.0.0.1", "localhost", "10.200.0.9"])
        words = f"does not name {HEAD_IP}"
    proc = h1.boot("head", "--node-ip-address", HEAD_IP, "--num-cpus", "1", env=env)
    assert proc.wait(60) == 2, proc.output_tail()
    error = one_error(proc)
    assert words in error and "/tmp/given/node.crt" in error and "tls_cert" in error, error
    assert "started `ray start" not in proc.output
    assert h1.processes() == []
