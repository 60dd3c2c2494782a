"""The control plane's own keys, made with `cryptography` (a dependency of ours): a CA, the API server's
serving certificate for 127.0.0.1 and the in-cluster names, and the service-account signing key pair."""

import datetime
import ipaddress

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

NAMES = ["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
         "kubernetes.default.svc.cluster.local"]
IPS = ["127.0.0.1", "10.96.0.1"]


def _key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem_key(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption()).decode()


def _cert(subject, issuer, public, signer, ca, sans=None):
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public)
         .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
         .not_valid_after(now + datetime.timedelta(days=1))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return b.sign(signer, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


def make(directory, addresses=()):
    """Write ca.crt, apiserver.crt/.key, sa.key/.pub into `directory`; `addresses`: more IPs the API server is
    reached at (its link to the pods, cluster.ControlPlane.link)."""
    ca_key, server_key, sa_key = _key(), _key(), _key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "seedcore-test-ca")])
    files = {
        "ca.crt": _cert(ca_name, ca_name, ca_key.public_key(), ca_key, True),
        "apiserver.key": _pem_key(server_key),
        "apiserver.crt": _cert(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]), ca_name,
                               server_key.public_key(), ca_key, False,
                               [x509.DNSName(n) for n in NAMES] + [x509.IPAddress(ipaddress.ip_address(i))
                                                                   for i in [*IPS, *addresses]]),
        "sa.key": _pem_key(sa_key),
        "sa.pub": sa_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo).decode(),
    }
    for name, text in files.items():
        with open(f"{directory}/{name}", "w", encoding="utf-8") as fh:
            fh.write(text)
