"""Certificates and the TLS preflight (tls/certs.py, tls/nodetls.py): issued with `cryptography`, checked before
Ray starts."""

import datetime
import io
import os
import socket
import stat

import pytest

from seedcore_boot.config.settings import resolve
from seedcore_boot.errors import BootError
from seedcore_boot.log import Log
from seedcore_boot.node import rayenv
from seedcore_boot.node.plan import dry_run_text, make_plan
from seedcore_boot.tls import certs, nodetls as tls, tlscmd

DAY = datetime.timedelta(days=1)


@pytest.fixture
def ca_dir(tmp_path):
    tlscmd.init(str(tmp_path / "ca"), 30, lambda line: None)
    return tmp_path / "ca"


def tls_settings(ca_dir, tmp_path, **more):
    flags = {"tls": "1", "tls_ca_cert": str(ca_dir / "ca.crt"), "tls_ca_key": str(ca_dir / "ca.key"),
             "temp_dir": str(tmp_path / "ray"), "node_ip_address": "10.9.8.7", **more}
    return resolve(flags, {}).settings


def load(path):
    return certs.load_certs(str(path), "x", "x")[0]


def usage(fn, *args, **kwargs):
    with pytest.raises(BootError) as err:
        fn(*args, **kwargs)
    assert err.value.exit_code == 2, err.value
    return str(err.value)


def test_init_makes_a_ca_with_a_private_key_and_never_replaces_it(ca_dir):
    key_mode = stat.S_IMODE(os.stat(ca_dir / "ca.key").st_mode)
    assert key_mode == 0o600 and stat.S_IMODE(os.stat(ca_dir / "ca.crt").st_mode) == 0o644
    ca = load(ca_dir / "ca.crt")
    assert certs.is_ca(ca) and certs.same_key(ca, certs.load_key(str(ca_dir / "ca.key"), "x", "x"))
    before = (ca_dir / "ca.key").read_bytes()
    assert "exists" in usage(tlscmd.init, str(ca_dir), 30, print)
    assert (ca_dir / "ca.key").read_bytes() == before


def test_a_node_issues_itself_a_certificate_ray_accepts(ca_dir, tmp_path):
    s = tls_settings(ca_dir, tmp_path, tls_dns_names="ray-head, ray-head.ns.svc")
    node = tls.plan(s, "head")
    out = io.StringIO()
    tls.prepare(node, s, "head", Log(stream=out))
    cert = load(node.cert)
    for name in ("127.0.0.1", "localhost", "10.9.8.7", "ray-head", "ray-head.ns.svc", "::1"):
        assert certs.covers(cert, name), (name, certs.names_in(cert))
    assert not certs.covers(cert, "10.9.8.6") and not certs.covers(cert, "other")
    assert certs.chain_problem([cert], load(ca_dir / "ca.crt")) is None
    assert certs.same_key(cert, certs.load_key(node.key, "x", "x"))
    for path in (node.key, node.cert):
        st = os.stat(path)
        assert stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == os.getuid()
    assert stat.S_IMODE(os.stat(os.path.dirname(node.key)).st_mode) == 0o700
    # Valid for a year, never past the CA (which this fixture makes valid for 30 days).
    assert cert.not_valid_after_utc == load(ca_dir / "ca.crt").not_valid_after_utc
    assert "issued this node's certificate" in out.getvalue() and "ray-head.ns.svc" in out.getvalue()
    assert "PRIVATE KEY" not in out.getvalue()
    tls.remove_issued(node)
    assert not os.path.exists(node.key) and not os.path.exists(node.cert)


def test_ray_gets_the_files_in_every_process_and_the_dry_run_shows_only_paths(ca_dir, tmp_path):
    s = tls_settings(ca_dir, tmp_path)
    add = rayenv.additions(s, "worker")
    stem = str(tmp_path / "ray" / "seedcore-boot" / "tls" / "worker-6380")
    assert add["RAY_USE_TLS"] == "1" and add["RAY_TLS_SERVER_CERT"] == stem + ".crt"
    assert add["RAY_TLS_SERVER_KEY"] == stem + ".key" and add["RAY_TLS_CA_CERT"] == str(ca_dir / "ca.crt")
    assert "RAY_USE_TLS" not in rayenv.additions(resolve({}, {}).settings, "worker")
    flags = {"tls": "1", "tls_ca_cert": str(ca_dir / "ca.crt"), "tls_ca_key": str(ca_dir / "ca.key")}
    text = dry_run_text(make_plan(resolve(flags, {}), "head", host_checks=False))
    assert "RAY_TLS_SERVER_KEY=/tmp/ray/seedcore-boot/tls/head-6380.key" in text
    key_body = (ca_dir / "ca.key").read_text().splitlines()[1]
    assert key_body not in text and "PRIVATE" not in text


def test_rays_own_variables_set_the_settings(ca_dir):
    env = {"RAY_USE_TLS": "1", "RAY_TLS_CA_CERT": str(ca_dir / "ca.crt"), "RAY_TLS_SERVER_CERT": "/c/node.crt",
           "RAY_TLS_SERVER_KEY": "/c/node.key"}
    s = resolve({}, env).settings
    assert (s.tls, s.tls_cert, s.tls_key) == (True, "/c/node.crt", "/c/node.key")
    assert tls.plan(s, "head") == tls.NodeTls("/c/node.crt", "/c/node.key", str(ca_dir / "ca.crt"), issue=False)


@pytest.mark.parametrize("flags,words", [
    ({"tls": "1"}, "tls_ca_cert is not set"),
    ({"tls": "1", "tls_ca_cert": "/ca.crt"}, "no way to a certificate"),
    ({"tls": "1", "tls_ca_cert": "/ca.crt", "tls_cert": "/n.crt"}, "tls_cert is set (from flag) but tls_key is not"),
    ({"tls_dns_names": "ray-head, köln.example"}, "bad name 'köln.example' in tls_dns_names (from flag)"),
])
def test_settings_that_cannot_work_are_refused(flags, words):
    assert words in usage(resolve, flags, {})


def test_tls_files_given_with_tls_off_are_said_not_dropped():
    notes = make_plan(resolve({"tls_ca_cert": "/ca.crt"}, {}), "head", host_checks=False).notes
    assert "tls_ca_cert is set (from flag) but tls is off: this node runs without TLS" in notes


def test_a_ca_key_of_another_ca_is_refused(ca_dir, tmp_path):
    tlscmd.init(str(tmp_path / "other"), 30, lambda line: None)
    s = tls_settings(ca_dir, tmp_path, tls_ca_key=str(tmp_path / "other" / "ca.key"))
    assert "does not belong to the CA certificate" in usage(tls.prepare, tls.plan(s, "head"), s, "head", Log())


def test_a_ca_that_expires_within_the_margin_is_refused(tmp_path):
    tlscmd.init(str(tmp_path / "ca"), 3, lambda line: None)
    s = tls_settings(tmp_path / "ca", tmp_path)
    text = usage(tls.prepare, tls.plan(s, "head"), s, "head", Log())
    assert "expires on" in text and "tls_expiry_margin_days (7)" in text and "tls init" in text


def _given(ca_dir, tmp_path, names, at=None, days=30, ca=None):
    """A certificate of the user's (tls_cert, tls_key) from the fixture's CA (or `ca`: (cert, key))."""
    ca_cert, ca_key = ca or (load(ca_dir / "ca.crt"), certs.load_key(str(ca_dir / "ca.key"), "x", "x"))
    cert, key = certs.issue(ca_cert, ca_key, names, days, "given", at=at)
    paths = tmp_path / "given.crt", tmp_path / "given.key"
    certs.write_file(str(paths[0]), certs.cert_pem(cert))
    certs.write_file(str(paths[1]), certs.key_pem(key))
    return tls_settings(ca_dir, tmp_path, tls_cert=str(paths[0]), tls_key=str(paths[1]))


def test_a_given_certificate_that_covers_the_node_is_used(ca_dir, tmp_path):
    s = _given(ca_dir, tmp_path, ["127.0.0.1", "localhost", "10.9.8.7"])
    out = io.StringIO()
    tls.prepare(tls.plan(s, "head"), s, "head", Log(stream=out))
    assert "using the certificate" in out.getvalue()


def test_a_given_certificate_missing_the_nodes_address_is_refused(ca_dir, tmp_path):
    s = _given(ca_dir, tmp_path, ["127.0.0.1", "localhost", "10.9.8.6"])
    text = usage(tls.prepare, tls.plan(s, "head"), s, "head", Log())
    assert "does not name 10.9.8.7" in text and "it names localhost, 127.0.0.1, 10.9.8.6" in text
    # A worker learns its address only from the route to its head: checked after the wait.
    assert "does not name 10.9.8.5" in usage(tls.check_worker_address, s, "10.9.8.5")


def test_an_expired_or_not_yet_valid_certificate_is_refused(ca_dir, tmp_path):
    names = ["127.0.0.1", "localhost", "10.9.8.7"]
    # The CA itself is valid from now on: a leaf from 40 days ago ends before it; certs.issue caps at the CA.
    s = _given(ca_dir, tmp_path, names, at=certs.now() - 40 * DAY, days=30)
    assert "expired on" in usage(tls.prepare, tls.plan(s, "head"), s, "head", Log())
    s = _given(ca_dir, tmp_path, names, days=3)
    assert "within tls_expiry_margin_days" in usage(tls.prepare, tls.plan(s, "head"), s, "head", Log())
    cert = load(ca_dir / "ca.crt")
    assert "is not valid before" in certs.validity_problem(cert, 0, at=certs.now() - 2 * DAY)


def test_a_certificate_from_another_ca_or_with_another_key_is_refused(ca_dir, tmp_path):
    other = certs.make_ca("other", 30)
    s = _given(ca_dir, tmp_path, ["127.0.0.1", "localhost", "10.9.8.7"], ca=other)
    assert "does not lead to the CA certificate" in usage(tls.prepare, tls.plan(s, "head"), s, "head", Log())
    s = _given(ca_dir, tmp_path, ["127.0.0.1", "localhost", "10.9.8.7"])
    certs.write_file(s.tls_key, certs.key_pem(certs.new_key()))
    assert "does not belong to the certificate" in usage(tls.prepare, tls.plan(s, "head"), s, "head", Log())


def test_files_that_are_not_what_they_should_be_are_one_line(ca_dir, tmp_path):
    (tmp_path / "junk").write_text("hello\n")
    assert "holds no PEM certificate" in usage(certs.load_certs, str(tmp_path / "junk"), "the CA certificate",
                                               "tls_ca_cert")
    assert "holds no PEM private key" in usage(certs.load_key, str(tmp_path / "junk"), "the CA key", "tls_ca_key")
    text = usage(certs.load_key, str(tmp_path / "missing"), "the CA key", "tls_ca_key")
    assert "cannot read the CA key" in text and "No such file" in text and "tls_ca_key" in text
    from cryptography.hazmat.primitives import serialization

    encrypted = certs.new_key().private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.BestAvailableEncryption(b"pw"))
    (tmp_path / "enc.key").write_bytes(encrypted)
    assert "encrypted with a passphrase" in usage(certs.load_key, str(tmp_path / "enc.key"), "the key", "tls_key")
    # A leaf certificate as the CA: refused before anything is issued from it.
    leaf = tmp_path / "leaf"
    s = _given(ca_dir, tmp_path, ["x"])
    s2 = tls_settings(leaf, tmp_path, tls_ca_cert=s.tls_cert, tls_ca_key=s.tls_key)
    assert "is not a CA certificate" in usage(tls.prepare, tls.plan(s2, "head"), s2, "head", Log())


@pytest.mark.parametrize("have,name,ok", [
    (["10.0.0.1"], "10.0.0.1", True), (["::1"], "0:0:0:0:0:0:0:1", True), (["Ray-Head"], "ray-head", True),
    (["*.ns.svc"], "head.ns.svc", True), (["*.ns.svc"], "a.head.ns.svc", False), (["*.ns.svc"], "ns.svc", False),
    (["10.0.0.1"], "10.0.0.2", False), (["localhost"], "127.0.0.1", False),
])
def test_names_match_as_ray_grpc_matches_them(have, name, ok):
    ca, key = certs.make_ca("t", 1)
    assert certs.covers(certs.issue(ca, key, have, 1, "t")[0], name) is ok


def test_an_ip_address_written_as_a_dns_name_counts(tmp_path):
    # Ray's own tls_utils.generate_self_signed_tls_certs writes addresses so; its gRPC accepts them (measured).
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    ca, key = certs.make_ca("t", 1)
    cert = (x509.CertificateBuilder().subject_name(ca.subject).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(1).not_valid_before(certs.now())
            .not_valid_after(certs.now() + DAY)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("10.0.0.1")]), critical=False)
            .sign(key, hashes.SHA256()))
    assert certs.covers(cert, "10.0.0.1") and not certs.covers(cert, "10.0.0.2")


def test_a_client_certificate_for_a_driver(ca_dir, tmp_path):
    lines = []
    tlscmd.issue_client(str(tmp_path / "out"), "laptop", str(ca_dir), resolve({}, {}).settings, ["laptop.lan"], 30,
                     lines.append)
    cert = load(tmp_path / "out" / "laptop.crt")
    assert certs.covers(cert, "laptop.lan") and certs.server_and_client(cert)
    assert stat.S_IMODE(os.stat(tmp_path / "out" / "laptop.key").st_mode) == 0o600
    assert f"export RAY_TLS_SERVER_KEY={tmp_path / 'out' / 'laptop.key'}" in lines
    assert f"export RAY_TLS_CA_CERT={ca_dir / 'ca.crt'}" in lines and "export RAY_USE_TLS=1" in lines
    tlscmd.issue_client(str(tmp_path / "node"), "tls", str(ca_dir), resolve({}, {}).settings, [], 30, lines.append,
                        this_host=True)
    node = load(tmp_path / "node" / "tls.crt")
    assert all(certs.covers(node, a) for a in tls.host_addresses()) and certs.covers(node, socket.gethostname())
    assert "no CA to issue from" in usage(tlscmd.issue_client, str(tmp_path), "x", None, resolve({}, {}).settings,
                                          [], 1, print)


def test_the_node_address_is_the_one_ray_picks():
    s = resolve({"node_ip_address": "10.1.1.1"}, {}).settings
    assert tls.ray_node_address(s) == "10.1.1.1"
    # 127.0.0.1 given is replaced by Ray (resolve_ip_for_localhost): the route decides, as without it.
    assert tls.ray_node_address(resolve({"node_ip_address": "127.0.0.1"}, {}).settings, "127.0.0.1") == "127.0.0.1"
    names = tls.names_for(resolve({}, {}).settings, "127.0.0.1")
    assert names[:3] == ["127.0.0.1", "::1", "localhost"] and len(names) == len(set(names))
