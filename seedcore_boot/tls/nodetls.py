"""Mutual TLS across the cluster from one CA (#19): the node's certificate and the checks before Ray starts
(the `seedcore-boot tls` commands are in tlscmd.py). The rest of the code sees only paths and the variables
Ray reads.

What Ray 2.20 does with TLS (read in the wheel: _private/tls_utils.py, _private/utils.py init_grpc_channel,
util/client/worker.py; the four names are in the raylet's and gcs_server's strings; measured here):
- RAY_USE_TLS=1 with RAY_TLS_SERVER_CERT, RAY_TLS_SERVER_KEY and RAY_TLS_CA_CERT in a process's environment
  turns TLS on for every gRPC server and client of that process: the C++ ones (GCS, raylet node and object
  managers, every core worker's port) and the Python ones (add_port_to_grpc_server: dashboard and agent gRPC,
  the Ray client server). Servers require a client certificate signed by the CA (require_client_auth);
  clients present the same pair. Every component and worker inherits `ray start`'s environment, so the
  variables in its environment are the whole switch. HTTP servers (dashboard, agent, runtime-env agent,
  metrics, Serve) stay plain: see exposure.py.
- Clients check the server's name against the address they dial: a node's certificate must name 127.0.0.1
  (its own components dial the GCS there), localhost, the node's address and any name it is dialed by (a
  worker's raylet dials the head by the very name given in --address, e.g. ray-head). Measured: an IPAddress
  SAN, and a DNSName SAN holding the address as text, both satisfy Ray's gRPC.
- The files are read when a server starts and when a channel is built; a replaced certificate takes a
  restart. So each node issues itself a fresh one at every start (ISSUED_DAYS), from the CA key it is given.
"""

import dataclasses
import os
import socket
import time

from ..config.addresses import dns_names
from ..errors import BootError, usage_error
from ..host import nodeaddr
from ..log import ms

ISSUED_DAYS = 365  # a node restarts long before; the CA's own end is the cap (certs.issue)
ENV_NAMES = ("RAY_USE_TLS", "RAY_TLS_SERVER_CERT", "RAY_TLS_SERVER_KEY", "RAY_TLS_CA_CERT")


@dataclasses.dataclass(frozen=True)
class NodeTls:
    cert: str
    key: str
    ca: str
    issue: bool  # we issue cert and key at start from the CA key; else they are the user's (tls_cert, tls_key)


def plan(settings, role):
    """The node's TLS files (paths only: nothing is read or written), or None when TLS is off."""
    s = settings
    if not s.tls:
        return None
    if s.tls_cert:
        return NodeTls(s.tls_cert, s.tls_key, s.tls_ca_cert, issue=False)
    stem = os.path.join(s.state_dir(), "tls", f"{role}-{s.node_manager_port}")  # one pair per node, as state.py
    return NodeTls(f"{stem}.crt", f"{stem}.key", s.tls_ca_cert, issue=True)


def env(node):
    """What Ray reads (tls_utils.load_certs_from_env and RayConfig USE_TLS, TLS_SERVER_CERT, ...)."""
    return dict(zip(ENV_NAMES, ("1", node.cert, node.key, node.ca)))


def notes(resolved):
    """Settings given that this node does not use, said rather than dropped."""
    s, src = resolved.settings, resolved.sources
    given = [n for n in ("tls_ca_cert", "tls_ca_key", "tls_cert", "tls_key", "tls_dns_names")
             if src[n] != "default"]
    if not s.tls:
        return [f"{n} is set (from {src[n]}) but tls is off: this node runs without TLS" for n in given]
    if s.tls_cert:
        return [f"{n} is set (from {src[n]}) but so is tls_cert: the node uses tls_cert and issues no certificate"
                for n in ("tls_ca_key", "tls_dns_names") if n in given]
    return []


def ray_node_address(settings, towards=None):
    """The address Ray 2.20 gives this node (scripts.py `start`): --node-ip-address, unless it is 127.0.0.1,
    which services.resolve_ip_for_localhost replaces; else services.get_node_ip_address(): the local end of a
    UDP socket connected towards the head (a worker; by the name in --address) or 8.8.8.8 (a head), which
    sends nothing; with no route at all the address of the host's name; 127.0.0.1 when that fails too
    (nodeaddr.detect, which the printed node address uses too)."""
    if settings.node_ip_address and settings.node_ip_address != "127.0.0.1":
        return settings.node_ip_address
    return nodeaddr.detect(towards or nodeaddr.INTERNET[0], nodeaddr.INTERNET[1])[0]


def host_addresses():
    """Every address of this host's interfaces but IPv6 link-local ones (they need a zone to be dialed)."""
    import psutil

    found = []
    for addrs in psutil.net_if_addrs().values():
        for a in addrs:
            if a.family in (socket.AF_INET, socket.AF_INET6) and not a.address.lower().startswith("fe80"):
                found.append(a.address.split("%")[0])
    return found


def names_for(settings, towards=None):
    """The names of an issued certificate: loopback, this host's name, the address Ray will use and every
    address of the host (whichever Ray's detection picks is named), and tls_dns_names (the head's Service
    name, a load balancer's). Each once, in that order."""
    names = ["127.0.0.1", "::1", "localhost", _host_name(), ray_node_address(settings, towards),
             *host_addresses(), *dns_names(settings)]
    return list(dict.fromkeys(n for n in names if n))


def _host_name():
    """This host's name as a certificate can hold it: a non-ASCII name in its IDNA form (what a TLS client
    compares), None when it cannot be one at all (the machine's name is no DNS name; its addresses are in)."""
    from . import certs

    name = socket.gethostname()
    if not name.isascii():
        try:
            name = name.encode("idna").decode()
        except UnicodeError:
            return None
    return None if certs.dns_name_problem(name) else name


def prepare(node, settings, role, log, towards=None):
    """The TLS preflight before Ray starts, one usage line (exit 2) for each way the files can be wrong; then
    the node's certificate issued (mode 0600) when it is ours to issue. towards: the head's host (a worker)."""
    t = time.monotonic()
    done = _issue(node, settings, role, towards) if node.issue else _check_given(node, settings, role)
    log.event("tls", f"{done}; mutual TLS on every gRPC port ({ms(time.monotonic() - t)})")


def check(node, settings, role):
    """The files checked as prepare() checks them, nothing issued or written (--dry-run); a line saying so."""
    if not node.issue:
        return _check_given(node, settings, role)
    from . import certs

    ca, _ = signer(node.ca, settings.tls_ca_key, settings.tls_expiry_margin_days, "tls_ca_cert and tls_ca_key")
    return f"this node issues its certificate at start from CA {certs.describe(ca)}"


def signer(ca_cert, ca_key, margin, where):
    """(CA certificate, CA key) to issue from: the certificate in the ca_cert file (a bundle may hold several)
    whose key ca_key is, valid beyond the margin."""
    from . import certs  # cryptography takes ~0.1 s to import: only where a certificate is handled

    cas = certs.load_certs(ca_cert, "the CA certificate", where)
    key = certs.load_key(ca_key, "the CA key", where)
    ca = next((c for c in cas if certs.same_key(c, key)), None)
    if ca is None:
        raise usage_error(f"the CA key {ca_key} does not belong to the CA certificate {ca_cert} "
                          f"({certs.describe(cas[0])})", f"set {where} to the two files of one CA (ca.crt and "
                          "ca.key of `seedcore-boot tls init`)")
    _check_ca(ca, ca_cert, margin)
    return ca, key


def _issue(node, settings, role, towards):
    from . import certs

    ca, ca_key = signer(node.ca, settings.tls_ca_key, settings.tls_expiry_margin_days, "tls_ca_cert and tls_ca_key")
    names = names_for(settings, towards)
    cert, key = certs.issue(ca, ca_key, names, ISSUED_DAYS, f"seedcore-boot {role} {socket.gethostname()}")
    where = os.path.dirname(node.key)
    try:
        os.makedirs(where, mode=0o700, exist_ok=True)
        os.chmod(where, 0o700)  # also when an earlier run (or a user) left it open
        certs.write_file(node.key, certs.key_pem(key))
        certs.write_file(node.cert, certs.cert_pem(cert))
    except OSError as exc:
        raise BootError(f"cannot write this node's certificate to {where}: {exc.strerror}",
                        f"make {where} writable for uid {os.getuid()}, or set temp_dir") from None
    return (f"issued this node's certificate ({', '.join(names)}), valid until {certs.until(cert)}, signed by CA "
            f"{certs.describe(ca)}")


def _check_given(node, settings, role):
    """A certificate of the user's: its own key, from the CA, valid beyond the margin, naming the node."""
    from . import certs

    cas = certs.load_certs(node.ca, "the CA certificate", "tls_ca_cert")
    chain = certs.load_certs(node.cert, "the certificate", "tls_cert")
    leaf = chain[0]
    if not certs.same_key(leaf, certs.load_key(node.key, "the key", "tls_key")):
        raise usage_error(f"the key {node.key} does not belong to the certificate {node.cert}",
                          "set tls_cert and tls_key to a certificate and its own key")
    problems = [(ca, certs.chain_problem(chain, ca)) for ca in cas]
    ca = next((ca for ca, problem in problems if problem is None), None)
    if ca is None:
        raise usage_error(f"the certificate {node.cert} ({certs.describe(leaf)}) does not lead to the CA "
                          f"certificate {node.ca}: {problems[0][1]}; the other nodes would refuse it",
                          "issue it from the cluster's CA, or unset tls_cert and tls_key so the node issues its "
                          "own from tls_ca_key")
    _check_ca(ca, node.ca, settings.tls_expiry_margin_days)
    _check_leaf(leaf, node.cert, settings.tls_expiry_margin_days)
    # A worker's address is known only once its head is (check_worker_address), unless it is given.
    wanted = ["127.0.0.1", "localhost"] + ([ray_node_address(settings)] if role == "head" or
                                           settings.node_ip_address else [])
    check_names(node, wanted, leaf)
    return (f"using the certificate {node.cert} ({certs.describe(leaf)}: {', '.join(certs.names_in(leaf))}), "
            f"valid until {certs.until(leaf)}")


def _check_ca(ca, path, margin):
    from . import certs

    if not certs.is_ca(ca):
        raise usage_error(f"the CA certificate {path} ({certs.describe(ca)}) is not a CA certificate (no "
                          "basicConstraints CA:TRUE): TLS peers refuse the certificates it signs",
                          "make a CA with `seedcore-boot tls init DIR`")
    problem = certs.validity_problem(ca, margin)
    if problem:
        raise usage_error(f"the CA certificate {path} ({certs.describe(ca)}) {problem}",
                          "make a new CA (`seedcore-boot tls init DIR`) and give it to every node")


def _check_leaf(leaf, path, margin):
    from . import certs

    problem = certs.validity_problem(leaf, margin)
    if problem:
        raise usage_error(f"the certificate {path} ({certs.describe(leaf)}) {problem}",
                          "issue a new one, or unset tls_cert and tls_key so the node issues its own at every start")
    if not certs.server_and_client(leaf):
        raise usage_error(f"the certificate {path} is not for both TLS server and client use (extendedKeyUsage): "
                          "every Ray process presents its one certificate as both",
                          "issue it with extendedKeyUsage serverAuth, clientAuth")


def check_names(node, wanted, cert=None):
    """Usage error unless the node's certificate names every one of `wanted`."""
    from . import certs

    cert = cert or certs.load_certs(node.cert, "the certificate", "tls_cert")[0]
    missing = [n for n in wanted if not certs.covers(cert, n)]
    if missing:
        raise usage_error(f"the certificate {node.cert} does not name {', '.join(missing)} (it names "
                          f"{', '.join(certs.names_in(cert)) or 'nothing'}): Ray's TLS peers check the name they "
                          "dial, and this node is dialed there",
                          "issue it with those names too, or unset tls_cert and tls_key so the node issues its own "
                          "from tls_ca_key")


def check_worker_address(settings, address):
    """After the head wait: the worker's certificate names the address the head will see it at (the node's
    address is known only once the head is: Ray detects it by the route towards the head)."""
    node = plan(settings, "worker")
    if node and address:
        check_names(node, [address])


def remove_issued(node):
    """The issued pair goes with the node (nothing of it is left once the node stopped); a user's files stay."""
    if node:
        for path in (node.key, node.cert):
            try:
                os.unlink(path)
            except OSError:
                pass
