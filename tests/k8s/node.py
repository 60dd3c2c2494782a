"""A Node run by the real kubelet (built by tests/k8s/kubelet.sh) with Debian's containerd, runc and CNI
plugins (containernetworking-plugins), on the control plane's own throwaway host (cluster.py), so that the
kubelet reaches the API server on 127.0.0.1 and the API server reaches the kubelet, and nothing of it is on
the machine's network. What it took on this machine (docs/kubelet-findings.md):

- The host's /run, /var/lib and /var/log get tmpfs mounts of their own: containerd's shim sockets
  (/run/containerd/s) and pod network namespaces (/run/netns), the CNI result cache (/var/lib/cni), the
  kubelet's device-plugin socket (/var/lib/kubelet/device-plugins) and its links to container logs
  (/var/log/containers; both fixed whatever --root-dir and podLogsDir say) are then the host's own and
  vanish with it.
- The node's address is on a veth pair inside the host (the kubelet refuses a loopback node IP; the kernel
  has no dummy links). Pods get 10.244.0.0/24 on the CNI bridge cni0, also inside the host.
- Root here lacks CAP_SYS_RESOURCE, so no process may lower its oom_score_adj: runc's nsexec dies on the
  -998 containerd gives the pause container ("failed to update /proc/self/oom_score_adj: Permission
  denied"). containerd's restrict_oom_score_adj clamps every container's value to containerd's own.
- cgroup v1 (hybrid, cgroup2 empty): the kubelet needs failCgroupV1: false (1.35 refuses v1 by default) and
  the cgroupfs driver; its cgroups go under a root of this node's own in every hierarchy (cgroupRoot),
  removed by close(), so two nodes never share /kubepods.
- The kubelet logs in with the control plane's static admin token. The API server has no client certificate
  for the kubelet, so the kubelet's own API (logs, exec) admits anonymous requests: it listens on the node
  address only, inside the host.
- Images: no registry is reachable. The sandbox image is kubelet.sh's `pause` stand-in wrapped in an OCI
  image tagged as the name containerd's CRI config uses, imported with `ctr -n k8s.io images import`;
  workloads likewise (import_image: a `docker save` tar), pods use imagePullPolicy: Never.
- Cluster DNS: tests/kuberay/dns.py on the host, fed from the real EndpointSlices (svcdns.py), answers on
  every address of the host, the CNI bridge's gateway among them: the kubelet's clusterDNS, so pods resolve
  <service>.<ns>.svc.cluster.local (a headless Service's name resolves to a pod; no kube-proxy).
"""

import hashlib
import io
import json
import os
import shutil
import tarfile

import psutil
import yaml

from tests import dockerhosts, nshost
from tests.k8s import cluster, svcdns

CNI_BIN = "/usr/lib/cni"  # Debian's containernetworking-plugins
ADDRESS = "10.250.0.1"
POD_SUBNET = "10.244.0.0/24"
SANDBOX_IMAGE = "registry.k8s.io/pause:3.6"  # the default of containerd 1.6's CRI plugin
GATEWAY = "10.244.0.1"  # the bridge plugin's gateway address on cni0 (isGateway), the pods' default route
CGROUPS = "/sys/fs/cgroup"


def binaries():
    """{"KUBELET": path, "STANDINS": dir} from kubelet.sh --print, or None if not built."""
    return cluster.binaries("kubelet.sh")


def missing():
    """What this machine lacks to run the node (Debian package names), [] if nothing."""
    lacks = [pkg for tool, pkg in (("containerd", "containerd"), ("ctr", "containerd"), ("runc", "runc"))
             if not shutil.which(tool)]
    if not all(os.access(f"{CNI_BIN}/{p}", os.X_OK) for p in ("bridge", "host-local", "loopback")):
        lacks.append("containernetworking-plugins")
    return lacks


def _blob(tar, data):
    digest = hashlib.sha256(data).hexdigest()
    _add(tar, f"blobs/sha256/{digest}", data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def _add(tar, name, data, mode=0o644):
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), mode
    tar.addfile(info, io.BytesIO(data))


def oci_image(binary, name, out):
    """An OCI image layout tar at `out`: one layer holding `binary` as /<its basename>, the entrypoint;
    annotated with `name` for `ctr images import`."""
    with open(binary, "rb") as fh:
        exe = fh.read()
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as lt:
        _add(lt, os.path.basename(binary), exe, 0o755)
    layer = layer.getvalue()
    config = {"architecture": "amd64", "os": "linux", "config": {"Entrypoint": [f"/{os.path.basename(binary)}"]},
              "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()]}}
    with tarfile.open(out, "w") as tar:
        manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                               **_blob(tar, json.dumps(config).encode())},
                    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", **_blob(tar, layer)}]}
        index = {"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json", **_blob(tar, json.dumps(manifest).encode()),
            "annotations": {"io.containerd.image.name": name,
                            "org.opencontainers.image.ref.name": name.rsplit(":", 1)[1]}}]}
        _add(tar, "index.json", json.dumps(index).encode())
        _add(tar, "oci-layout", b'{"imageLayoutVersion": "1.0.0"}')


def containerd_config(d):
    return f"""version = 2
root = "{d}/containerd/root"
state = "{d}/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
                    "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs",
                    "io.containerd.internal.v1.opt", "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "{d}/containerd.sock"
[ttrpc]
  address = "{d}/containerd.sock.ttrpc"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{SANDBOX_IMAGE}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  disable_apparmor = true
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN}"
    conf_dir = "{d}/cni"
"""


def cni_config(d):
    return {"cniVersion": "0.4.0", "name": "seedcore-test", "plugins": [{
        "type": "bridge", "bridge": "cni0", "isGateway": True, "ipMasq": False, "hairpinMode": True,
        "ipam": {"type": "host-local", "ranges": [[{"subnet": POD_SUBNET}]], "routes": [{"dst": "0.0.0.0/0"}],
                 "dataDir": f"{d}/ipam"}}]}


def kubelet_config(d, ca_file, cgroup_root):
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
        "cgroupDriver": "cgroupfs", "failCgroupV1": False, "cgroupRoot": cgroup_root, "failSwapOn": False,
        "containerRuntimeEndpoint": f"unix://{d}/containerd.sock",
        "address": ADDRESS, "port": 10250, "readOnlyPort": 0, "healthzBindAddress": "127.0.0.1",
        "authentication": {"anonymous": {"enabled": True}, "webhook": {"enabled": False},
                           "x509": {"clientCAFile": ca_file}},
        "authorization": {"mode": "AlwaysAllow"},
        "podLogsDir": f"{d}/pod-logs", "clusterDomain": "cluster.local", "clusterDNS": [GATEWAY],
        "resolvConf": "",
        "serializeImagePulls": False}


def cgroup_hierarchies():
    """Every cgroup mount under /sys/fs/cgroup (v1 controllers and the cgroup2 one)."""
    with open("/proc/self/mounts", encoding="utf-8") as fh:
        return sorted(f[1] for f in (line.split() for line in fh)
                      if f[2] in ("cgroup", "cgroup2") and f[1].startswith(CGROUPS))


def remove_cgroups(root, timeout=30):
    """rmdir `root` and everything below it in every hierarchy, deepest first (a cgroup with a task in it
    cannot go; the kernel frees a killed task's cgroup shortly after the kill: hence the retries)."""
    def left():
        for hierarchy in cgroup_hierarchies():
            top = hierarchy + root
            for dirpath, _, _ in sorted(os.walk(top), key=lambda w: -w[0].count("/")):
                try:
                    os.rmdir(dirpath)
                except FileNotFoundError:
                    pass
                except OSError:
                    return dirpath
        return None
    nshost.wait_for(f"cgroups under {root} removed", lambda: left() is None, timeout, step=0.5)


class KubeletNode:
    def __init__(self, cp, bins, name="node1"):
        self.cp, self.host, self.bins, self.name = cp, cp.host, bins, name
        self.dir = f"{cp.dir}/{name}"  # under the control plane's directory: cp.close() removes it
        self.cgroup_root = f"/{os.path.basename(cp.dir)}-{name}"  # /seedcore-<name>-<random>-node1
        self.procs, self.dns = {}, None
        try:
            self._start()
        except BaseException:
            self.close()
            raise

    def _start(self):
        d = self.dir
        for sub in ("containerd", "cni", "ipam", "pod-logs", "kubelet", "images"):
            os.makedirs(f"{d}/{sub}", exist_ok=True)
        # Only inside the host (its mount namespace is private): nothing lands on the machine's /run, /var.
        for target in ("/run", "/var/lib", "/var/log"):
            self.host.sh("mount", "-t", "tmpfs", "tmpfs", target)
        self.host.ip("link", "add", "node0", "type", "veth", "peer", "name", "node0p")
        self.host.ip("addr", "add", f"{ADDRESS}/24", "dev", "node0")
        for dev in ("node0p", "node0"):
            self.host.ip("link", "set", dev, "up")
        # The API server dials a node by its first address, the Hostname one (the node's name) by default.
        self.host.bind_file("/etc/hosts", f"127.0.0.1\tlocalhost\n{ADDRESS}\t{self.name}\n")
        for hierarchy in cgroup_hierarchies():
            os.makedirs(hierarchy + self.cgroup_root, exist_ok=True)
        with open(f"{d}/containerd.toml", "w", encoding="utf-8") as fh:
            fh.write(containerd_config(d))
        with open(f"{d}/cni/10-seedcore-test.conflist", "w", encoding="utf-8") as fh:
            json.dump(cni_config(d), fh)
        with open(f"{d}/kubelet.yaml", "w", encoding="utf-8") as fh:
            yaml.safe_dump(kubelet_config(d, f"{self.cp.dir}/ca.crt", self.cgroup_root), fh)

        self.procs["containerd"] = self.host.spawn(["containerd", "--config", f"{d}/containerd.toml"])
        self.procs["containerd"].wait_line("containerd successfully booted", 60)
        oci_image(os.path.join(self.bins["STANDINS"], "pause"), SANDBOX_IMAGE, f"{d}/images/pause.tar")
        self.import_image(f"{d}/images/pause.tar")
        self.dns = svcdns.Server(self.host, self.cp.client, d)

        self.procs["kubelet"] = self.host.spawn([
            self.bins["KUBELET"], "--config", f"{d}/kubelet.yaml", "--kubeconfig", f"{self.cp.dir}/kubeconfig",
            "--root-dir", f"{d}/kubelet", "--cert-dir", f"{d}/kubelet/pki", "--hostname-override", self.name,
            "--node-ip", ADDRESS, "-v=1"])
        nshost.wait_for(f"node {self.name} Ready", self.ready, 120)

    def import_image(self, tar, timeout=900):
        """An image tar (OCI layout or `docker save`) into containerd's k8s.io namespace, where the CRI sees
        it. Its name must be the full one (docker.io/...): the CRI normalizes a pod's short image name."""
        self.ctr("images", "import", tar, timeout=timeout)

    def ctr(self, *args, timeout=120):
        out = self.host.run(["ctr", "--address", f"{self.dir}/containerd.sock", "--namespace", "k8s.io", *args],
                            timeout=timeout)
        assert out.returncode == 0, f"ctr {' '.join(args)}: {out.stderr}"
        return out.stdout

    def ready(self):
        if self.procs["kubelet"].popen.poll() is not None:
            raise AssertionError(f"kubelet exited {self.procs['kubelet'].popen.returncode}:\n{self.logs('kubelet')}")
        node = self.cp.client.get_or_none(f"/api/v1/nodes/{self.name}")
        return bool(node) and any(c["type"] == "Ready" and c["status"] == "True"
                                  for c in node["status"].get("conditions") or [])

    def logs(self, name, n=60):
        return self.procs[name].output_tail(n)

    def close(self):
        """Ends the kubelet, containerd and every pod of this node (containerd's shims outlive containerd:
        they are children of the host's PID 1), then removes the node's cgroups."""
        if self.dns:
            self.dns.close()
        for name in ("kubelet", "containerd"):
            if name in self.procs:
                self.procs[name].kill()
        doomed = []
        for shim in [p for p in self.host.processes() if p.info["name"].startswith("containerd-shim")]:
            try:
                doomed += [*shim.children(recursive=True), shim]
            except psutil.Error:
                pass
        dockerhosts._kill(doomed)
        remove_cgroups(self.cgroup_root)
