"""The few `kubectl` commands the docs show, done through the API as kubectl does them (no kubectl here: it
is not built; the requests are the same): a documented block is run as written.

- `kubectl create secret generic NAME --from-file=[KEY=]PATH ...`: a Secret of type Opaque whose `data` holds
  each file's bytes, base64 (KEY defaults to the file's name), POSTed to the namespace.
- `kubectl apply -f FILE`: every object of the file created (a first apply creates).
"""

import base64
import os
import shlex

from tests.k8s import api


def run(client, line, cwd, namespace="default"):
    """Do one kubectl command line (as the docs write it) against `client`; paths relative to `cwd`."""
    argv = shlex.split(line, comments=True)
    assert argv[0] == "kubectl", line
    if argv[1:4] == ["create", "secret", "generic"]:
        files = {}
        for arg in argv[5:]:
            assert arg.startswith("--from-file="), f"not supported here: {arg} ({line})"
            key, _, path = arg[len("--from-file="):].rpartition("=")
            files[key or os.path.basename(path)] = os.path.join(cwd, path)
        return client.request("POST", api.path_of("Secret", namespace=namespace), secret(argv[4], files))
    if argv[1:3] == ["apply", "-f"] and len(argv) == 4:
        return client.apply_file(os.path.join(cwd, argv[3]), namespace)
    raise AssertionError(f"not a kubectl command this test knows: {line}")


def secret(name, files):
    """The Secret `kubectl create secret generic NAME --from-file=KEY=PATH ...` sends: files {key: path}."""
    data = {}
    for key, path in files.items():
        with open(path, "rb") as fh:
            data[key] = base64.b64encode(fh.read()).decode()
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "type": "Opaque", "data": data}
