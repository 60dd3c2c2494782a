"""A pod of the real API server as the emulation runs it (tests/kuberay/kubelet.py): plan_of makes the
emulation's operator.Pod from it (containers with their env resolved against the pod's Secrets, init
containers, volumes, /dev/shm, restart policy, grace period), with the kubelet's service links
(api_service_env); ApiObjects is what a pod's volumes read from the API, as the kubelet reads them
(ConfigMaps, Secrets, and the projected service account token from the TokenRequest API)."""

import base64

from tests.kuberay import operator


class _Resolver:
    """What operator.Operator._container needs to resolve a container's env: the pod's namespace and its
    Secrets, read from the API."""

    _container = operator.Operator._container

    def __init__(self, client, namespace):
        self.client, self.namespace = client, namespace

    def secret(self, name, key):
        data = self.client.get(f"/api/v1/namespaces/{self.namespace}/secrets/{name}").get("data") or {}
        return base64.b64decode(data[key]).decode()


def api_service_env(slices):
    """KUBERNETES_SERVICE_HOST/PORT(_HTTPS) for the pods from the EndpointSlices: the `kubernetes` Service's
    first ready endpoint in namespace default ({} while it has none)."""
    for s in slices:
        meta = s["metadata"]
        if meta["namespace"] != "default" or (meta.get("labels") or {}).get("kubernetes.io/service-name") != \
                "kubernetes":
            continue
        port = next((str(p["port"]) for p in s.get("ports") or [] if p.get("name") == "https"), None)
        for ep in s.get("endpoints") or []:
            if port and ep.get("addresses") and (ep.get("conditions") or {}).get("ready", True):
                return {"KUBERNETES_SERVICE_HOST": ep["addresses"][0], "KUBERNETES_SERVICE_PORT": port,
                        "KUBERNETES_SERVICE_PORT_HTTPS": port}
    return {}


def plan_of(pod, client, service_env=None):
    """An API Pod as the emulation's operator.Pod (what tests/kuberay/pods.RunningPod runs); service_env: what
    the kubelet adds to every container's environment where the container does not set it."""
    meta, spec = pod["metadata"], pod["spec"]
    labels = dict(meta.get("labels") or {})
    resolver = _Resolver(client, meta["namespace"])
    containers = [resolver._container(c, meta["name"], labels) for c in spec["containers"]]
    init = [resolver._container(c, meta["name"], labels) for c in spec.get("initContainers") or []]
    for c in containers + init:
        c.env = {**(service_env or {}), **c.env}
    volumes = {v["name"]: v for v in spec.get("volumes") or []}
    return operator.Pod(meta["name"], labels.get("ray.io/node-type", ""), labels.get("ray.io/group", ""), labels,
                        containers, init, volumes, operator.shm_size(spec["containers"][0], volumes),
                        spec.get("restartPolicy", "Always"), float(spec.get("terminationGracePeriodSeconds", 30)),
                        spec.get("securityContext") or {})


class ApiObjects:
    """What kubelet.Kubelet reads of the `op` it was given, from the API: ConfigMaps and Secrets."""

    def __init__(self, client, namespace):
        self.client, self.namespace = client, namespace

    def config_map(self, name):
        return self.client.get(f"/api/v1/namespaces/{self.namespace}/configmaps/{name}").get("data") or {}

    def secret_keys(self, name):
        return sorted(self.client.get(f"/api/v1/namespaces/{self.namespace}/secrets/{name}").get("data") or {})

    def secret(self, name, key):
        return _Resolver(self.client, self.namespace).secret(name, key)

    def projected(self, volume, pod_name):
        """{path: text} of a projected volume, as the kubelet fills the one the ServiceAccount admission
        plugin adds (kube-api-access-*: a token from the TokenRequest API bound to the pod, the cluster's CA
        from the kube-root-ca.crt ConfigMap, the namespace). Written once: the kubelet renews the token at
        80% of its 3607 s, longer than any test here."""
        pod = self.client.get(f"/api/v1/namespaces/{self.namespace}/pods/{pod_name}")
        files = {}
        for source in volume["sources"]:
            if "serviceAccountToken" in source:
                files[source["serviceAccountToken"]["path"]] = self.token(pod, source["serviceAccountToken"])
            elif "configMap" in source:
                data = self.config_map(source["configMap"]["name"])
                files.update((i["path"], data[i["key"]]) for i in source["configMap"]["items"])
            elif "downwardAPI" in source:
                files.update((i["path"], _field(pod, i["fieldRef"]["fieldPath"]))
                             for i in source["downwardAPI"]["items"])
            else:
                raise AssertionError(f"projected source not run by the node agent: {sorted(source)}")
        return files

    def token(self, pod, source):
        """POST serviceaccounts/<sa>/token: the kubelet's TokenRequest for a pod's projected token."""
        meta = pod["metadata"]
        spec = {"expirationSeconds": source.get("expirationSeconds", 3600),
                "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": meta["name"], "uid": meta["uid"]}}
        if source.get("audience"):
            spec["audiences"] = [source["audience"]]
        sa = pod["spec"].get("serviceAccountName") or "default"
        return self.client.request(
            "POST", f"/api/v1/namespaces/{self.namespace}/serviceaccounts/{sa}/token",
            {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec})["status"]["token"]


def _field(pod, path):
    """A downward API fieldRef of the metadata (what the admission's projection asks for: the namespace)."""
    meta = pod["metadata"]
    if path.startswith("metadata.labels['"):
        return meta.get("labels", {})[path.split("'")[1]]
    return {"metadata.namespace": meta["namespace"], "metadata.name": meta["name"], "metadata.uid": meta["uid"]}[path]
