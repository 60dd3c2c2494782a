"""Our own gRPC calls with TLS on, and the one-line cause of a failed handshake, against a real gRPC server on
loopback that is set up as Ray's Python servers are (tls_utils.add_port_to_grpc_server: the CA required of
clients). Ray's C++ servers gave the same answers in the e2e measurements (tlsprobe.py)."""

import socket
from concurrent import futures

import grpc
import pytest

from seedcore_boot.ray import gcsprobe
from seedcore_boot.tls import certs, nodetls as tls

ALIVE = b"\x0a\x00\x12\x062.20.0"  # CheckAliveReply{status: {}, ray_version: "2.20.0"}


def pair(tmp_path, name, ca, names=("127.0.0.1", "localhost")):
    """Files of a certificate issued by ca = (cert, key); returns (cert path, key path)."""
    cert, key = certs.issue(*ca, list(names), 1, name)
    paths = str(tmp_path / f"{name}.crt"), str(tmp_path / f"{name}.key")
    certs.write_file(paths[0], certs.cert_pem(cert))
    certs.write_file(paths[1], certs.key_pem(key))
    return paths


def ca_file(tmp_path, name, ca):
    path = str(tmp_path / f"{name}-ca.crt")
    certs.write_file(path, certs.cert_pem(ca[0]))
    return path


class Gcs:
    """A gRPC server answering CheckAlive as the GCS does; TLS as Ray's when given (cert, key, CA) files."""

    def __init__(self, server_tls=None):
        handler = grpc.method_handlers_generic_handler("ray.rpc.NodeInfoGcsService", {
            "CheckAlive": grpc.unary_unary_rpc_method_handler(lambda req, ctx: ALIVE)})
        self.server = grpc.server(futures.ThreadPoolExecutor(2), handlers=[handler])
        if server_tls:
            cert, key, ca = (open(p, "rb").read() for p in server_tls)
            creds = grpc.ssl_server_credentials([(key, cert)], root_certificates=ca, require_client_auth=True)
            self.port = self.server.add_secure_port("127.0.0.1:0", creds)
        else:
            self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    def stop(self):
        self.server.stop(0)


@pytest.fixture
def cluster(tmp_path):
    """Two CAs, a TLS 'GCS' with a certificate of CA a, and our TLS reset afterwards."""
    a, b = certs.make_ca("a", 1), certs.make_ca("b", 1)
    files = {"a": ca_file(tmp_path, "a", a), "b": ca_file(tmp_path, "b", b),
             "head": pair(tmp_path, "head", a), "worker": pair(tmp_path, "worker", a),
             "stranger": pair(tmp_path, "stranger", b)}
    gcs = Gcs((*files["head"], files["a"]))
    try:
        yield gcs, files
    finally:
        gcs.stop()
        gcsprobe.use_tls({})


def env(cert_key, ca):
    return tls.env(tls.NodeTls(*cert_key, ca, issue=False))


def probe(gcs):
    ok, detail, version = gcsprobe.check_gcs("127.0.0.1", gcs.port, timeout=3)
    return ok, detail, None if ok else gcsprobe.handshake_failure("127.0.0.1", gcs.port, detail)


def test_the_clusters_certificate_gets_an_answer(cluster):
    gcs, files = cluster
    gcsprobe.use_tls(env(files["worker"], files["a"]))
    assert probe(gcs)[0] is True


def test_a_worker_of_another_ca_is_told_so(cluster):
    gcs, files = cluster
    gcsprobe.use_tls(env(files["stranger"], files["b"]))  # trusts only b: the head's certificate is a's
    ok, detail, (cause, fix) = probe(gcs)
    assert not ok and "CERTIFICATE_VERIFY_FAILED" in detail
    assert "not signed by this node's CA" in cause and "different CAs" in cause and "same CA" in fix


def test_a_certificate_the_head_refuses_is_told_so(cluster):
    gcs, files = cluster
    gcsprobe.use_tls(env(files["stranger"], files["a"]))  # trusts the head, but its own certificate is b's
    ok, detail, (cause, _) = probe(gcs)
    assert not ok and "the head refused this node's certificate" in cause


def test_a_plain_worker_at_a_tls_head_is_told_so(cluster):
    gcs, _ = cluster
    gcsprobe.use_tls({})
    ok, detail, (cause, fix) = probe(gcs)
    assert not ok and "Socket closed" in detail
    assert "speaks mutual TLS and this node does not" in cause and "tls_ca_cert" in fix


def test_a_tls_worker_at_a_plain_head_is_told_so(cluster, tmp_path):
    _, files = cluster
    plain = Gcs()
    try:
        gcsprobe.use_tls(env(files["worker"], files["a"]))
        ok, detail, (cause, _) = probe(plain)
    finally:
        plain.stop()
    assert not ok and "does not speak TLS" in cause


def test_the_head_is_checked_under_the_name_rays_raylet_dials(cluster):
    gcs, files = cluster
    gcsprobe.use_tls(env(files["worker"], files["a"]), server_name="ray-head")  # not in the head's certificate
    ok, detail, (cause, fix) = probe(gcs)
    assert not ok and "does not name ray-head" in cause and "tls_dns_names" in fix
    gcsprobe.use_tls(env(files["worker"], files["a"]), server_name="localhost")
    assert probe(gcs)[0] is True


def test_a_head_that_is_not_there_is_no_tls_matter(cluster):
    _, files = cluster
    gcsprobe.use_tls(env(files["worker"], files["a"]))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ok, detail, _ = gcsprobe.check_gcs("127.0.0.1", port, timeout=1)
    assert not ok and gcsprobe.handshake_failure("127.0.0.1", port, detail) is None
