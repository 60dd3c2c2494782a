"""Certificate and key files users give (tls_cert, tls_key, tls_ca_cert, tls_ca_key): any bytes, PEM armour
around anything, and real certificates made by other tools with whatever extensions they chose (no SAN, URI or
e-mail names, no key usage, not a CA). Read by certs.py for the TLS preflight."""

import base64
import datetime
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from hypothesis import given, strategies as st

from seedcore_boot.tls import certs
from tests.props import any_text, result_or_boot_error

KEY = ec.generate_private_key(ec.SECP256R1())
CA, CA_KEY = certs.make_ca("props CA", 30)


armoured = st.tuples(st.sampled_from(["CERTIFICATE", "PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY",
                                      "ENCRYPTED PRIVATE KEY", "X"]), st.binary(max_size=60)).map(
    lambda t: b"-----BEGIN %s-----\n%s\n-----END %s-----\n" % (t[0].encode(), base64.encodebytes(t[1]),
                                                                t[0].encode()))
files = st.one_of(st.binary(max_size=80), armoured, armoured.map(lambda a: certs.cert_pem(CA) + a))


@given(files)
def test_any_certificate_or_key_file_loads_or_is_one_usage_line(scratch, data):
    path = os.path.join(scratch, "file.pem")
    with open(path, "wb") as fh:
        fh.write(data)
    result_or_boot_error(certs.load_certs, path, "tls_cert", "tls_cert")
    result_or_boot_error(certs.load_key, path, "tls_key", "tls_key")


general_names = st.one_of(
    st.sampled_from(["node", "*.svc", "10.0.0.5", "xn--caf-dma"]).map(x509.DNSName),
    st.ip_addresses().map(x509.IPAddress),
    st.just(x509.UniformResourceIdentifier("spiffe://cluster/ns/ray")),
    st.just(x509.RFC822Name("ops@example.com")),
)


@st.composite
def other_tools_certificates(draw):
    now = certs.now()
    start = now + datetime.timedelta(days=draw(st.integers(-4000, 10)))
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, draw(st.sampled_from(["n", "x y"])))])
                             if draw(st.booleans()) else x509.Name([]))
               .issuer_name(CA.subject).public_key(KEY.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(start).not_valid_after(start + datetime.timedelta(days=draw(st.integers(1, 8000)))))
    if draw(st.booleans()):
        builder = builder.add_extension(x509.SubjectAlternativeName(draw(st.lists(general_names, min_size=1,
                                                                                  max_size=4))), critical=False)
    if draw(st.booleans()):
        builder = builder.add_extension(x509.BasicConstraints(ca=draw(st.booleans()), path_length=None), critical=True)
    if draw(st.booleans()):
        builder = builder.add_extension(x509.ExtendedKeyUsage(draw(st.lists(st.sampled_from(
            [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.CODE_SIGNING]),
            min_size=1, max_size=3, unique=True))), critical=False)
    signer = CA_KEY if draw(st.booleans()) else KEY
    return builder.sign(signer, hashes.SHA256())


@given(other_tools_certificates(), st.integers(0, 10**12), any_text)
def test_any_certificate_of_another_tool_is_judged(cert, margin, name):
    assert isinstance(certs.describe(cert), str)
    assert isinstance(certs.names_in(cert), list)
    assert certs.covers(cert, name) in (True, False)
    assert certs.is_ca(cert) in (True, False) and certs.server_and_client(cert) in (True, False)
    problem = certs.validity_problem(cert, margin)
    assert problem is None or isinstance(problem, str)
    assert certs.chain_problem([cert], CA) is None or certs.issued_by(cert, CA) is False
