"""The `seedcore-boot tls` commands (docs/security.md): make the cluster's CA, issue a certificate for a driver
or ray:// client elsewhere, print the variables of the node running here for a driver on it."""

import os
import socket
import time

from ..errors import BootError, usage_error
from . import nodetls as tls

CA_DAYS = 3650
# A century: a certificate must end before X.509's last date (9999-12-31); `--days 3000000` overflowed datetime.
MAX_DAYS = 36500
CA_CERT, CA_KEY = "ca.crt", "ca.key"


def init(directory, days, echo):
    """`tls init DIR`: a new cluster CA in DIR (ca.crt 0644, ca.key 0600); never replaces one."""
    from . import certs

    cert_path, key_path = os.path.join(directory, CA_CERT), os.path.join(directory, CA_KEY)
    existing = [p for p in (cert_path, key_path) if os.path.lexists(p)]
    if existing:
        raise usage_error(f"{existing[0]} exists; a CA is never replaced (every certificate of its cluster depends "
                          "on it)", "choose another directory, or remove the old CA's files first")
    try:
        os.makedirs(directory, exist_ok=True)
        cert, key = certs.make_ca(f"seedcore-boot cluster CA ({socket.gethostname()}, "
                                  f"{time.strftime('%Y-%m-%d')})", days)
        certs.write_file(key_path, certs.key_pem(key), 0o600)
        certs.write_file(cert_path, certs.cert_pem(cert), 0o644)
    except OSError as exc:
        raise BootError(f"cannot write the CA to {directory}: {exc.strerror}",
                        "choose a directory this user can write") from None
    echo(f"wrote {cert_path} (CA {certs.describe(cert)}, valid until {certs.until(cert)}) and {key_path} (mode 600)")
    echo("whoever holds ca.key can join the cluster and run code in it: keep it as a secret (a Docker or "
         "Kubernetes secret, readable only by the node's user)")
    echo(f"every node: SEEDCORE_BOOT_TLS=1 SEEDCORE_BOOT_TLS_CA_CERT={os.path.abspath(cert_path)} "
         f"SEEDCORE_BOOT_TLS_CA_KEY={os.path.abspath(key_path)}")
    echo(f"a driver or ray:// client elsewhere: seedcore-boot tls issue OUT_DIR --ca-dir {directory}")
    return 0


def issue_client(out_dir, name, ca_dir, settings, extra_names, days, echo, this_host=False):
    """`tls issue`: a certificate for a driver or ray:// client off the cluster's nodes (the CA from ca_dir, else
    tls_ca_cert and tls_ca_key), and the variables that give it to Ray. this_host: also this host's names and
    addresses, for a node's certificate made before the node starts (a Kubernetes init container, whose pod
    shares its network)."""
    from . import certs

    if ca_dir:
        ca_cert, ca_key, where = os.path.join(ca_dir, CA_CERT), os.path.join(ca_dir, CA_KEY), "--ca-dir"
    else:
        ca_cert, ca_key, where = settings.tls_ca_cert, settings.tls_ca_key, "tls_ca_cert and tls_ca_key"
    if not ca_cert or not ca_key:
        raise usage_error("no CA to issue from", "give --ca-dir DIR (made by `seedcore-boot tls init DIR`), or set "
                          "tls_ca_cert and tls_ca_key")
    why = certs.name_problem(name)
    if why:  # it names the files too: no '/' (a path elsewhere), no name a certificate cannot hold
        raise usage_error(f"--name {name!r} cannot name a certificate: {why}",
                          "give a DNS name (letters, digits, '-', '.') or an IP address")
    ca, key = tls.signer(ca_cert, ca_key, settings.tls_expiry_margin_days, where)
    names = list(dict.fromkeys(["127.0.0.1", "localhost", name, *(tls.names_for(settings) if this_host else ()),
                                *extra_names]))
    cert, leaf_key = certs.issue(ca, key, names, days, f"seedcore-boot client {name}")
    paths = [os.path.abspath(os.path.join(out_dir, f"{name}{ext}")) for ext in (".crt", ".key")]
    try:
        certs.write_file(paths[1], certs.key_pem(leaf_key))
        certs.write_file(paths[0], certs.cert_pem(cert), 0o644)
    except OSError as exc:
        raise BootError(f"cannot write to {out_dir}: {exc.strerror}", "choose a directory this user can write") from None
    echo(f"# {paths[0]} ({', '.join(names)}), valid until {certs.until(cert)}; its key {paths[1]} (mode 600)")
    for var, value in tls.env(tls.NodeTls(*paths, os.path.abspath(ca_cert), issue=False)).items():
        echo(f"export {var}={value}")
    return 0


def running_env(settings):
    """The four variables of the node running under this temp dir, read from its `ray start`'s environment:
    for `eval "$(seedcore-boot tls env)"` before a driver or `ray status` on the node."""
    import psutil

    from ..host import state

    nodes = state.running_nodes(settings)
    if not nodes:
        raise BootError(f"no running seedcore-boot node under {settings.state_dir()}",
                        "start one, or give the temp_dir it runs with")
    found = {}
    try:
        for child in psutil.Process(nodes[0][1]["pid"]).children():
            got = child.environ()
            if got.get("RAY_USE_TLS"):
                found = {k: got[k] for k in tls.ENV_NAMES if k in got}
                break
    except psutil.Error as exc:
        raise BootError(f"cannot read the node's environment: {exc}", "run this as the node's user") from None
    if found.get("RAY_USE_TLS", "0").lower() not in ("1", "true"):
        raise BootError("the node runs without TLS", "start it with tls on (SEEDCORE_BOOT_TLS=1)")
    return found
