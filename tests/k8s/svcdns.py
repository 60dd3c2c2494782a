"""Cluster DNS fed from the real API: the records tests/kuberay/dns.py serves, made from the EndpointSlices
the real endpointslice controller keeps (from the pods' status, whoever runs the pods: the node agent of
agent.py, or the real kubelet of node.py).

<service>.<ns>.svc.cluster.local -> the first ready address of the Service's slices (a headless Service, as
KubeRay's head Service is, publishes not-ready addresses too: they count as ready). Not emulated: a
ClusterIP's virtual IP (no kube-proxy): the name resolves to a pod's address.
"""

import sys
import threading

from tests.kuberay import dns, operator


def slices(client):
    """Every EndpointSlice of the API server behind `client`."""
    return client.get("/apis/discovery.k8s.io/v1/endpointslices")["items"]


def records(endpoint_slices):
    """{fqdn: ip} from EndpointSlices."""
    found = {}
    for s in endpoint_slices:
        svc = (s["metadata"].get("labels") or {}).get("kubernetes.io/service-name")
        for ep in s.get("endpoints") or []:
            if svc and (ep.get("conditions") or {}).get("ready", True) and ep.get("addresses"):
                found.setdefault(f"{svc}.{s['metadata']['namespace']}.svc.{operator.DOMAIN}", ep["addresses"][0])
    return found


class Server:
    """dns.py on `host` (all its addresses, UDP 53), its records file rewritten every second from the API.
    Errors of the sync are kept in `errors` (for a failing test to show); close() stops both."""

    def __init__(self, host, client, workdir):
        self.client, self.path, self.errors = client, f"{workdir}/records.json", []
        dns.write_records(self.path, {})
        # -I: the script's own directory is not put first on sys.path, where tests/kuberay/operator.py would
        # shadow the standard library's `operator` (json -> re -> enum imports it): seen with pyenv's 3.11.
        self.proc = host.spawn([sys.executable, "-I", dns.__file__, self.path])
        self.proc.wait_line("dns ready", 30)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.wait(1.0):
            try:
                dns.write_records(self.path, records(slices(self.client)))
            except Exception as exc:  # noqa: BLE001 (kept for the test to show; the loop goes on)
                self.errors.append(repr(exc))

    def close(self):
        self._stop.set()
        self._thread.join(timeout=30)
        self.proc.kill()
