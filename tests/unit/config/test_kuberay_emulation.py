"""The emulated KubeRay (tests/kuberay/) behaves as KubeRay v1.1.1 does (its pod.go, as summarised there): the pure
parts, checked before the e2e tests rely on them."""

import os
import random
import socket
import struct

from tests import REPO
from tests.kuberay import dns, operator


def test_the_generated_command_has_kuberays_format():
    params = {"dashboard-host": "0.0.0.0", "num-cpus": "1", "block": "true", "include-dashboard": "false",
              "log-color": "false", "disable-usage-stats": "false", "memory": "2147483648"}
    cmd = operator.ray_start_cmd("head", params, random.Random(0))
    assert cmd.startswith("ray start --head ")
    flags = set(cmd[len("ray start --head "):].split("  "))
    assert {f.strip() for f in flags} == {"--dashboard-host=0.0.0.0", "--num-cpus=1", "--block",
                                          "--include-dashboard=false", "--log-color=false", "--memory=2147483648"}
    orders = {operator.ray_start_cmd("head", params, random.Random(seed)) for seed in range(20)}
    assert len(orders) > 1  # Go's map order: it varies


def test_kuberays_defaults_fill_what_the_user_left_out():
    limits = {"limits": {"cpu": "500m", "memory": "4Gi", "nvidia.com/gpu": "2"}}
    w = operator.start_params("worker", {}, limits, "rc-head-svc.ns.svc.cluster.local", 6379, False)
    assert w == {"address": "rc-head-svc.ns.svc.cluster.local:6379", "metrics-export-port": "8080",
                 "block": "true", "dashboard-agent-listen-port": "52365", "num-cpus": "1",
                 "memory": str(4 * 2**30), "num-gpus": "2"}
    h = operator.start_params("head", {"num-cpus": "0", "block": "false"}, {}, "x", 6379, True)
    assert h["dashboard-host"] == "0.0.0.0" and h["num-cpus"] == "0" and h["block"] == "true"
    assert h["no-monitor"] == "true" and "address" not in h


def test_quantities_are_kubernetes_quantities():
    assert operator.quantity("500m") == 0.5 and operator.value("500m") == 1 and operator.value("2") == 2
    assert operator.quantity("4Gi") == 4 * 2**30 and operator.quantity("3G") == 3e9


def test_without_the_annotation_the_command_is_rewritten():
    command, args = operator.rewrite(["seedcore-boot", "head"], None, "ray start --head  --block ")
    assert command == ["/bin/bash", "-lc", "--"]
    assert args == [" seedcore-boot  head  && ulimit -n 65536; ray start --head  --block "]


def test_default_probes_hard_code_kuberays_ports_and_timeouts():
    ready, live = operator.default_probes("head", rayservice=False)
    assert ready.command == ["bash", "-c", "wget -T 2 -q -O- http://localhost:52365/api/local_raylet_healthz | "
                             "grep success && wget -T 2 -q -O- http://localhost:8265/api/gcs_healthz | grep success"]
    assert (ready.timeout, ready.period, ready.failure, live.failure) == (1, 5, 10, 120)
    worker_ready, _ = operator.default_probes("worker", rayservice=True)
    assert "localhost:8000/-/healthz" in worker_ready.command[-1] and worker_ready.failure == 1


def test_a_rayservice_head_starts_outside_the_serve_service_and_its_workers_inside():
    op = operator.Operator(operator.documents(os.path.join(REPO, "deploy", "kuberay", "rayservice.yaml")))
    assert op.head().labels["ray.io/serve"] == "false" and op.worker().labels["ray.io/serve"] == "true"


def test_pods_carry_kuberays_labels_metrics_port_and_its_wait_gcs_ready_text():
    # As the real v1.1.1 builds them (compared field by field in tests/e2e/kuberay_real/test_raycluster.py).
    op = operator.Operator(operator.documents(os.path.join(REPO, "deploy", "kuberay", "raycluster.yaml")))
    head, worker = op.head(), op.worker()
    for pod in (head, worker):
        assert pod.labels["app.kubernetes.io/name"] == "kuberay"
        assert pod.labels["app.kubernetes.io/created-by"] == "kuberay-operator"
    assert [p["name"] for p in head.containers[0].ports].count("metrics") == 1  # the manifest's own, kept
    assert {"name": "metrics", "containerPort": 8080} in worker.containers[0].ports  # none there: added
    script = worker.init[-1].args[0]  # Go's raw string, tab-indented as in pod.go
    assert script.startswith("\n\t\t\t\t\tSECONDS=0\n") and "\t\t\t\t\t\tsleep 5\t\t\n" in script
    assert script.endswith("\t\t\t\t\tdone\n\t\t\t\t")


def test_k8s_variable_expansion():
    assert operator.expand("--requirepass $(PW) $(NOPE) $$(PW)", {"PW": "s"}) == "--requirepass s $(NOPE) $(PW)"


def _query(name, qtype=1):
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split("."))
    return struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0) + labels + b"\0" + struct.pack(">HH", qtype, 1)


def test_cluster_dns_answers_only_names_it_has():
    records = {"rc-head-svc.default.svc.cluster.local": "10.211.1.10"}
    a = dns.answer(_query("rc-head-svc.default.svc.cluster.local"), records)
    tid, flags, _, ancount = struct.unpack(">HHHH", a[:8])
    assert (tid, flags & 0xF, ancount) == (0x1234, 0, 1) and a.endswith(socket.inet_aton("10.211.1.10"))
    aaaa = dns.answer(_query("rc-head-svc.default.svc.cluster.local", 28), records)
    assert struct.unpack(">HHHH", aaaa[:8])[1] & 0xF == 0 and struct.unpack(">HHHH", aaaa[:8])[3] == 0
    gone = dns.answer(_query("rc-head-svc.default.svc.cluster.local"), {})  # the head not Ready
    assert struct.unpack(">HH", gone[:4])[1] & 0xF == 3  # NXDOMAIN
