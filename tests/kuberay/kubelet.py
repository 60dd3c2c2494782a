"""The kubelet's side of the emulated pods (operator.py builds them; pods.py runs each one): a node in the
real Docker engine.

- One Docker network per test cluster (--internal: nothing leaves it), pods at fixed addresses on it, and a
  cluster DNS (dns.py) in a container of its own. Each pod gets the resolv.conf a kubelet writes (the cluster
  DNS, search <ns>.svc.cluster.local svc.cluster.local cluster.local, ndots:5): Docker's own DNS is not used.
- A Service's name resolves only while a pod it selects is Ready: the head's `<cluster>-head-svc` is a
  normal ClusterIP Service in KubeRay v1.1, without endpoints for a head that is not Ready.
- Deleting a pod is `docker stop -t <terminationGracePeriodSeconds>`: SIGTERM, SIGKILL after the grace.
"""

import os
import shutil
import threading

from . import dns, operator
from .pods import RunningPod, docker

DNS_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dns.py")
DNS_IMAGE = "rayproject/ray:2.20.0-py310"  # the stand-in has python3; the DNS needs nothing else


def resolv_conf(subnet, namespace):
    """The resolv.conf a kubelet writes for a pod in `namespace`: the cluster DNS (dns.py at <subnet>.2)."""
    return (f"nameserver {subnet}.2\nsearch {namespace}.svc.{operator.DOMAIN} svc.{operator.DOMAIN} "
            f"{operator.DOMAIN}\noptions ndots:5\n")


class Kubelet:
    """Runs one Operator's pods on one emulated Kubernetes node; close() removes everything it made."""

    def __init__(self, op, tag, subnet, workdir):
        self.op, self.tag, self.subnet, self.dir = op, tag, subnet, workdir  # subnet: "10.211.7"
        self.network = f"{tag}-net"
        self.pods = {}
        self._next_ip = 10
        self._lock = threading.Lock()
        os.makedirs(f"{workdir}/dns", exist_ok=True)
        shutil.copy(DNS_SCRIPT, f"{workdir}/dns/dns.py")
        self._write_records({})
        self.resolv = f"{workdir}/resolv.conf"
        with open(self.resolv, "w", encoding="utf-8") as fh:
            fh.write(resolv_conf(subnet, op.namespace))
        docker("network", "create", "--internal", "--subnet", f"{subnet}.0/24", "--label", f"seedcore.test={tag}",
               self.network)
        docker("run", "-d", "--name", f"{tag}-dns", "--label", f"seedcore.test={tag}", "--network", self.network,
               "--ip", f"{subnet}.2", "--user", "0", "-v", f"{workdir}/dns:/dns:ro", "--entrypoint", "python3",
               DNS_IMAGE, "/dns/dns.py", "/dns/records.json")

    # --- Services ---------------------------------------------------------------------------------
    def _write_records(self, records):
        dns.write_records(f"{self.dir}/dns/records.json", records)

    def _services(self):
        head = {"ray.io/cluster": self.op.cluster, "ray.io/node-type": "head"}
        return [(self.op.fqdn, head)] + self.op.services()

    def update_services(self):
        """Each Service's name -> the address of a Ready pod it selects; no Ready pod, no name."""
        with self._lock:
            records = {}
            for name, selector in self._services():
                for pod in self.pods.values():
                    if pod.ready and all(pod.plan.labels.get(k) == v for k, v in selector.items()):
                        records[name] = pod.ip
                        break
            self._write_records(records)

    # --- pods -------------------------------------------------------------------------------------
    def run(self, plan):
        """Start a pod (its init containers, then its container) in the background; wait_ready() waits."""
        with self._lock:
            ip = f"{self.subnet}.{self._next_ip}"
            self._next_ip += 1
        pod = RunningPod(self, plan, ip)
        self.pods[plan.name] = pod
        threading.Thread(target=pod.boot, daemon=True).start()
        return pod

    def delete(self, pod, timeout=None):
        """As the kubelet deletes a pod: SIGTERM, SIGKILL after terminationGracePeriodSeconds. Returns the
        container's exit code."""
        pod.deleting = True
        pod.ready = False
        self.update_services()
        grace = int(pod.plan.grace)
        if pod.running:  # all its containers at once, as the kubelet kills them
            docker("stop", "-t", str(grace), pod.container, *(c.container for c in pod.sidecars.values()),
                   timeout=(timeout or grace + 60), check=False)
        else:  # still in its init containers
            for i in range(len(pod.plan.init)):
                docker("stop", "-t", str(grace), f"{pod.container}-init{i}", check=False, timeout=grace + 60)
        pod.exited.wait(10)
        return pod.exit_code

    def close(self):
        for pod in self.pods.values():
            pod.deleting = True
        ids = docker("ps", "-aq", "--filter", f"label=seedcore.test={self.tag}", check=False).stdout.split()
        if ids:
            docker("rm", "-f", *ids, check=False, timeout=180)
        docker("network", "rm", self.network, check=False)
        shutil.rmtree(self.dir, ignore_errors=True)
