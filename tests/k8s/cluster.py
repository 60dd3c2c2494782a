"""A real Kubernetes control plane and the real KubeRay operator, on a throwaway host (tests/nshost.py: its
own network, PID and mount namespaces), built by tests/k8s/build.sh.

- etcd, kube-apiserver, kube-controller-manager, kube-scheduler and KubeRay's ray-operator listen on the
  host's 127.0.0.1 only; the host has no other interface, so none of them can reach anything else.
  Servers they would open by default elsewhere are off: the controller manager's and scheduler's HTTPS
  (--secure-port=0), the operator's metrics and health probes (=0); leader election is off everywhere.
- Their identity: one bearer token (group system:masters) from a token file, the cluster's own CA and
  serving certificate (certs.py).
- This side reaches the API server through a Unix socket a forwarder on the host relays to 127.0.0.1:6443
  (api.py). KubeRay's CRDs are applied from the operator's module in the Go module cache, as released.
- link(): the host's one other interface, a veth pair into the bridge of the pods' Docker network
  (<subnet>.0/24, made by the node agent), at <subnet>.3, as a cluster's control plane sits on the pod
  network. The host resolves names through the cluster DNS the pods use (<subnet>.2, fed from the real
  EndpointSlices): the operator reaches `<cluster>-head-svc.<ns>.svc.cluster.local:8265` and the pods' IPs as
  in a cluster. kube-apiserver listens there too and advertises that address, so the `kubernetes` Service's
  EndpointSlice (written by the API server itself) is <subnet>.3:6443, which the node agent hands the pods
  as KUBERNETES_SERVICE_HOST/PORT; the Service's own port, 443, is redirected to 6443 there (kube-proxy's
  part, for clients that use the name: Ray's autoscaler). No default route: the host reaches loopback and
  that subnet only.
- close() ends the host's PID 1 (every process there with it) and removes the directory.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

import yaml

from tests import nshost
from tests.k8s import api, certs
from tests.kuberay import kubelet, pods

HERE = os.path.dirname(os.path.abspath(__file__))
TOKEN = "seedcore-test-admin-token"
APISERVER = "https://127.0.0.1:6443"

# A TCP relay from a Unix socket to the API server, run on the host.
_FORWARD = r"""
import os, socket, sys, threading
path, port = sys.argv[1], int(sys.argv[2])
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(path)
os.chmod(path, 0o600)
srv.listen(64)
print("forwarding", flush=True)
def pump(a, b):
    try:
        while True:
            data = a.recv(65536)
            if not data:
                break
            b.sendall(data)
    except OSError:
        pass
    finally:
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
while True:
    conn, _ = srv.accept()
    try:
        up = socket.create_connection(("127.0.0.1", port))
    except OSError:
        conn.close()
        continue
    for a, b in ((conn, up), (up, conn)):
        threading.Thread(target=pump, args=(a, b), daemon=True).start()
"""


def binaries(script="build.sh"):
    """{"KUBERAY_BIN": dir, "KUBERAY_OLD_BIN": dir, "KUBERNETES_BIN": dir, "GOMODCACHE": dir} from build.sh
    --print (or what another build script of this directory prints, node.py's kubelet.sh), or None if the
    binaries are not built.
    --print waits for a build under way (scripts/test builds in the background; SEEDCORE_GO_BUILD_WAIT, 90 min
    by default, bounds that wait in the script itself)."""
    out = subprocess.run(["bash", os.path.join(HERE, script), "--print"], capture_output=True, text=True)
    if out.returncode != 0:
        return None
    return dict(line.split("=", 1) for line in out.stdout.split())


def crd_files(gomodcache, version):
    base = os.path.join(gomodcache, "github.com", "ray-project", "kuberay", f"ray-operator@{version}", "config",
                        "crd", "bases")
    return sorted(os.path.join(base, f) for f in os.listdir(base) if f.endswith(".yaml"))


def kuberay_version(kuberay_bin):
    return os.path.basename(os.path.dirname(kuberay_bin)).split("-", 1)[1]


def kuberay_bin(bins, version=None):
    """The bin directory of the operator `version` build.sh built (None: KUBERAY_BIN, the newest)."""
    if version is None:
        return bins["KUBERAY_BIN"]
    found = {kuberay_version(d): d for k, d in bins.items() if k.startswith("KUBERAY_")}
    if version not in found:
        raise AssertionError(f"no ray-operator {version} among {sorted(found)}: see tests/k8s/build.sh")
    return found[version]


LINK_OCTET = 3  # the host on the pods' network: the bridge is .1, the cluster DNS .2, pods .10 up (kubelet.py)


class ControlPlane:
    def __init__(self, bins, subnet=None, name="k8s", kuberay=None):
        """subnet: the pods' network ("10.212.1"), which link() joins; None when the pods run on this host
        itself (the real kubelet of node.py), which then has only its loopback and the node's own links.
        kuberay: the operator's version, one build.sh built (None: the newest, v1.6.2; "v1.1.1" the older)."""
        self.subnet = subnet
        self.bins = {**bins, "KUBERAY_BIN": kuberay_bin(bins, kuberay)}
        self.address = f"{subnet}.{LINK_OCTET}" if subnet else None
        self.kuberay_version = kuberay_version(self.bins["KUBERAY_BIN"])
        self.kubernetes_version = os.path.basename(os.path.dirname(bins["KUBERNETES_BIN"])).split("-", 1)[1]
        # Outside /tmp: the host's /tmp is private, and Docker (for the pods) must see the files too.
        self.dir = tempfile.mkdtemp(prefix=f"seedcore-{name}-", dir="/var/tmp")
        self.host = None
        self.procs = {}
        try:
            self._start()
        except BaseException:
            self.close()
            raise

    def _bin(self, name):
        return os.path.join(self.bins["KUBERAY_BIN" if name == "ray-operator" else "KUBERNETES_BIN"], name)

    def _spawn(self, name, argv, ready=None, timeout=120):
        proc = self.host.spawn([self._bin(name), *argv], env={"KUBECONFIG": f"{self.dir}/kubeconfig"})
        self.procs[name] = proc
        if ready:
            proc.wait_line(ready, timeout)
        return proc

    def _start(self):
        d = self.dir
        certs.make(d, [self.address] if self.address else [])
        with open(f"{d}/tokens.csv", "w", encoding="utf-8") as fh:
            fh.write(f'{TOKEN},seedcore-admin,seedcore-admin,"system:masters"\n')
        kubeconfig = {
            "apiVersion": "v1", "kind": "Config", "current-context": "test",
            "clusters": [{"name": "test", "cluster": {"server": APISERVER, "certificate-authority": f"{d}/ca.crt"}}],
            "users": [{"name": "admin", "user": {"token": TOKEN}}],
            "contexts": [{"name": "test", "context": {"cluster": "test", "user": "admin"}}]}
        with open(f"{d}/kubeconfig", "w", encoding="utf-8") as fh:
            yaml.safe_dump(kubeconfig, fh)
        self.host = nshost.NsHost("k8s")
        if self.subnet:
            # Before anything starts: every name lookup on the host goes to the cluster DNS (none leaves it).
            self.host.bind_file("/etc/resolv.conf", kubelet.resolv_conf(self.subnet, "default"))
        # The `kubernetes` Service's endpoint: this host on the pods' network; without one it would be
        # 127.0.0.1, which Endpoints refuse (loopback), so none is written.
        advertise = (["--advertise-address", self.address] if self.address else
                     ["--advertise-address", "127.0.0.1", "--endpoint-reconciler-type", "none"])
        self._spawn("etcd", [
            "--name", "test", "--data-dir", "/tmp/etcd", "--unsafe-no-fsync",
            "--listen-client-urls", "http://127.0.0.1:2379", "--advertise-client-urls", "http://127.0.0.1:2379",
            "--listen-peer-urls", "http://127.0.0.1:2380", "--initial-advertise-peer-urls", "http://127.0.0.1:2380",
            "--initial-cluster", "test=http://127.0.0.1:2380"], ready="ready to serve client requests")
        self._spawn("kube-apiserver", [
            # All of the host's interfaces: its loopback and, once linked, the pods' network.
            "--etcd-servers", "http://127.0.0.1:2379", "--bind-address", "0.0.0.0", "--secure-port", "6443",
            *advertise,
            "--tls-cert-file", f"{d}/apiserver.crt", "--tls-private-key-file", f"{d}/apiserver.key",
            "--token-auth-file", f"{d}/tokens.csv", "--authorization-mode", "Node,RBAC",
            "--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
            "--service-account-key-file", f"{d}/sa.pub", "--service-account-signing-key-file", f"{d}/sa.key",
            "--service-cluster-ip-range", "10.96.0.0/16", "--allow-privileged=true", "--profiling=false"])
        self.client = api.Client(f"{d}/api.sock", f"{d}/ca.crt", TOKEN)
        fwd = self.host.spawn([sys.executable, "-c", _FORWARD, f"{d}/api.sock", "6443"])
        self.procs["forward"] = fwd
        fwd.wait_line("forwarding", 30)
        self.wait_api()
        common = ["--kubeconfig", f"{d}/kubeconfig", "--leader-elect=false", "--secure-port=0"]
        self._spawn("kube-controller-manager", [
            *common, "--service-account-private-key-file", f"{d}/sa.key", "--root-ca-file", f"{d}/ca.crt",
            "--use-service-account-credentials=false", "--profiling=false"])
        self._spawn("kube-scheduler", [*common, "--profiling=false"])
        for path in crd_files(self.bins["GOMODCACHE"], self.kuberay_version):
            self.client.apply_file(path)
        for crd in ("rayclusters", "rayservices", "rayjobs"):
            nshost.wait_for(f"CRD {crd} established", lambda c=crd: self._established(c), 60)
        nshost.wait_for("the default ServiceAccount", lambda: self.client.get_or_none(
            "/api/v1/namespaces/default/serviceaccounts/default"), 120)
        # The same flags in v1.1.1 and v1.6.2 (main.go of either module; controller-runtime adds --kubeconfig).
        self._spawn("ray-operator", [
            "--kubeconfig", f"{d}/kubeconfig", "--enable-leader-election=false", "--metrics-addr=0",
            "--health-probe-bind-address=0", "--log-stdout-encoder=console"])

    def link(self, network):
        """Plug the host into the Docker network `network` (the node agent's, on self.subnet)."""
        net = json.loads(pods.docker("network", "inspect", network).stdout)[0]
        bridge = net["Options"].get("com.docker.network.bridge.name") or f"br-{net['Id'][:12]}"
        outside = f"k8s{self.host.pid}"[:15]  # the root namespace's end, a port of the bridge
        subprocess.run(["ip", "link", "add", "name", "eth0", "netns", str(self.host.pid), "type", "veth",
                        "peer", "name", outside], check=True)
        subprocess.run(["ip", "link", "set", outside, "master", bridge, "up"], check=True)
        self.host.ip("addr", "add", f"{self.address}/24", "dev", "eth0")
        self.host.ip("link", "set", "eth0", "up")
        # The `kubernetes` Service's port 443 onto the API server's 6443 at this address, as kube-proxy maps
        # a Service's port to its endpoints' (here, in this host's own netfilter): Ray 2.20's autoscaler asks
        # https://kubernetes.default:443 whatever KUBERNETES_SERVICE_* say (ray/autoscaler/_private/kuberay/
        # node_provider.py url_from_resource), and the cluster DNS gives that name this address.
        self.host.sh("iptables", "-t", "nat", "-A", "PREROUTING", "-d", self.address, "-p", "tcp", "--dport", "443",
                     "-j", "REDIRECT", "--to-ports", "6443")

    def _established(self, plural):
        crd = self.client.get_or_none(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{plural}.ray.io")
        return crd and any(c["type"] == "Established" and c["status"] == "True"
                           for c in (crd.get("status") or {}).get("conditions") or [])

    def wait_api(self, timeout=180):
        def ready():
            for name, proc in self.procs.items():
                if proc.popen.poll() is not None:
                    raise AssertionError(f"{name} exited {proc.popen.returncode}:\n{proc.output_tail(40)}")
            try:
                return self.client.request("GET", "/readyz") == "ok"
            except (OSError, api.ApiError):
                return False
        nshost.wait_for("the API server ready", ready, timeout, step=0.5)

    def logs(self, name, n=60):
        return self.procs[name].output_tail(n)

    def alive(self):
        """{name: running?} of the control plane's processes."""
        return {name: p.popen.poll() is None for name, p in self.procs.items()}

    def close(self):
        if self.host:
            self.host.close()  # PID 1 of the host: the kernel ends every process there
        shutil.rmtree(self.dir, ignore_errors=True)
