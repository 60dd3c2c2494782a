"""A minimal client of the Kubernetes API server the tests start (cluster.py): JSON over HTTPS, the
cluster's own CA, a bearer token. Stdlib only; no watch (callers poll).

The API server listens on 127.0.0.1 of the control plane's own network namespace; this side reaches it
through a Unix socket that a forwarder in that namespace relays to it (cluster.py), so nothing of the
control plane is on the machine's network, not even its loopback. TLS is end to end: the certificate is
checked for 127.0.0.1 as a client inside would.
"""

import http.client
import json
import socket
import ssl
import urllib.parse

import yaml

# kind -> (API path prefix, plural, namespaced) of what the tests apply.
KINDS = {
    "ConfigMap": ("/api/v1", "configmaps", True),
    "Secret": ("/api/v1", "secrets", True),
    "Service": ("/api/v1", "services", True),
    "Pod": ("/api/v1", "pods", True),
    "Namespace": ("/api/v1", "namespaces", False),
    "Deployment": ("/apis/apps/v1", "deployments", True),
    "CustomResourceDefinition": ("/apis/apiextensions.k8s.io/v1", "customresourcedefinitions", False),
    "RayCluster": ("/apis/ray.io/v1", "rayclusters", True),
    "RayService": ("/apis/ray.io/v1", "rayservices", True),
    "RayJob": ("/apis/ray.io/v1", "rayjobs", True),
}


class ApiError(Exception):
    def __init__(self, status, body):
        super().__init__(f"{status}: {body[:2000] if isinstance(body, str) else body}")
        self.status, self.body = status, body


def path_of(kind, name=None, namespace="default"):
    prefix, plural, namespaced = KINDS[kind]
    path = f"{prefix}/namespaces/{namespace}/{plural}" if namespaced else f"{prefix}/{plural}"
    return f"{path}/{name}" if name else path


class _Connection(http.client.HTTPSConnection):
    def __init__(self, unix_path, context, timeout):
        super().__init__("127.0.0.1", context=context, timeout=timeout)
        self._unix_path = unix_path

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._unix_path)
        self.sock = self._context.wrap_socket(sock, server_hostname="127.0.0.1")


class Client:
    def __init__(self, unix_path, ca_file, token):
        self.unix_path, self.token = unix_path, token
        self._ctx = ssl.create_default_context(cafile=ca_file)

    def request(self, method, path, body=None, content_type="application/json", timeout=30):
        conn = _Connection(self.unix_path, self._ctx, timeout)
        try:
            conn.request(method, path, body=None if body is None else json.dumps(body), headers={
                "Authorization": f"Bearer {self.token}", "Content-Type": content_type, "Accept": "application/json"})
            r = conn.getresponse()
            text = r.read().decode("utf-8", "replace")
        finally:
            conn.close()
        if r.status >= 300:
            raise ApiError(r.status, text)
        try:
            return json.loads(text) if text else None
        except ValueError:
            return text  # /readyz and the like answer plain text

    def get(self, path, **params):
        query = urllib.parse.urlencode(params)
        return self.request("GET", path + (f"?{query}" if query else ""))

    def get_or_none(self, path):
        try:
            return self.get(path)
        except ApiError as e:
            if e.status == 404:
                return None
            raise

    def create(self, obj, namespace="default"):
        ns = obj.get("metadata", {}).get("namespace", namespace)
        return self.request("POST", path_of(obj["kind"], namespace=ns), obj)

    def merge_patch(self, path, patch):
        return self.request("PATCH", path, patch, content_type="application/merge-patch+json")

    def delete(self, path):
        try:
            return self.request("DELETE", path)
        except ApiError as e:
            if e.status != 404:
                raise
            return None

    def apply_file(self, path, namespace="default"):
        """Create every object of a YAML file (kubectl create -f)."""
        with open(path, encoding="utf-8") as fh:
            return [self.create(d, namespace) for d in yaml.safe_load_all(fh) if d]
