"""Certificates with the `cryptography` package: the cluster CA, a node's certificate signed by it, and the
checks a certificate must pass before Ray gets it. Pure apart from reading and writing the files; every
problem a user can cause is one usage line (BootError, exit 2) naming the file and the setting.

Keys are ECDSA P-256: issuing one takes about a millisecond (an RSA-2048 key takes tens to hundreds), and
Ray's gRPC (BoringSSL, C++ and Python) accepts them. A CA of the user's may be RSA or ECDSA.
"""

import datetime
import ipaddress
import os
import re

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ..config.values import host_problem
from ..errors import usage_error

SKEW = datetime.timedelta(minutes=5)  # not_before this far back: a node whose clock is a little behind accepts it


def now():
    return datetime.datetime.now(datetime.timezone.utc)


def new_key():
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64])])


def make_ca(common_name, days, at=None):
    """(certificate, key) of a new self-signed CA that may sign leaf certificates only (path length 0)."""
    at = at or now()
    key = new_key()
    cert = (x509.CertificateBuilder()
            .subject_name(_name(common_name)).issuer_name(_name(common_name))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(at - SKEW).not_valid_after(at + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return cert, key


def _general_name(name):
    why = name_problem(name)
    if why:
        raise usage_error(f"{name!r} cannot be a name in a certificate: {why}",
                          "give a DNS name (letters, digits, '-', '.') or an IP address")
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def name_problem(name):
    """Why `name` can be neither an IP address nor a DNS name in a certificate, or None."""
    try:
        ipaddress.ip_address(name)
        return None
    except ValueError:
        return dns_name_problem(name)


def dns_name_problem(name):
    """Why `name` cannot be a DNSName in a certificate (cryptography raises ValueError for a non-ASCII one;
    TLS clients compare A-labels), or None."""
    if not name.isascii():
        try:
            return f"not ASCII; its IDNA form is {name.encode('idna').decode()!r}"
        except UnicodeError:
            return "not ASCII"
    if name.startswith("*."):
        name = name[2:]
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        return "only letters, digits, '-', '_' and '.' (and a leading '*.')"
    return host_problem(name)


def issue(ca_cert, ca_key, names, days, common_name, at=None, not_before=None):
    """(certificate, key): a new key and a certificate for it signed by the CA, naming `names` (DNS names and
    IP addresses), for both TLS server and client use (Ray's processes present one pair for both). Its
    validity ends with the CA's at the latest. not_before: for tests that need a certificate not yet valid."""
    at = at or now()
    key = new_key()
    until = min(at + datetime.timedelta(days=days), ca_cert.not_valid_after_utc)
    cert = (x509.CertificateBuilder()
            .subject_name(_name(common_name)).issuer_name(ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(not_before or at - SKEW).not_valid_after(until)
            .add_extension(x509.SubjectAlternativeName([_general_name(n) for n in names]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                  ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    return cert, key


def cert_pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def write_file(path, data, mode=0o600):
    """Write `data` to `path` atomically with `mode` from the first byte on (never readable by others, not even
    for a moment); the directory is made 0700 if it does not exist."""
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.fchmod(fd, mode)  # the umask may have taken bits away from a 0644 certificate
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
    except BaseException:
        os.unlink(tmp)
        raise
    os.replace(tmp, path)


def _read(path, what, setting):
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise usage_error(f"cannot read {what} {path}: {exc.strerror} ({_owner(path)}; this process runs as uid "
                          f"{os.getuid()})", f"check {setting}, and that this user can read the file") from None


def _owner(path):
    try:
        st = os.stat(path)
    except OSError:
        return "no such file" if not os.path.lexists(path) else "cannot stat it"
    return f"owned by uid {st.st_uid}, mode {st.st_mode & 0o777:o}"


def load_certs(path, what, setting):
    """Every certificate in a PEM file, the first one first (a leaf and its chain, or a CA)."""
    data = _read(path, what, setting)
    try:
        found = x509.load_pem_x509_certificates(data)
    except ValueError:
        found = []
    if not found:
        raise usage_error(f"{what} {path} holds no PEM certificate", f"point {setting} at a PEM file "
                          "(-----BEGIN CERTIFICATE-----)")
    return found


def load_key(path, what, setting):
    data = _read(path, what, setting)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise usage_error(f"{what} {path} is encrypted with a passphrase; Ray reads keys without one",
                          f"decrypt it (openssl pkey -in KEY -out KEY.plain) and point {setting} at that") from None
    except (ValueError, UnsupportedAlgorithm):
        raise usage_error(f"{what} {path} holds no PEM private key",
                          f"point {setting} at a PEM key (-----BEGIN PRIVATE KEY-----)") from None
    if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        raise usage_error(f"{what} {path} is a {type(key).__name__}; Ray's TLS and seedcore-boot take RSA or ECDSA "
                          "keys", "make an RSA or ECDSA key (`seedcore-boot tls init` makes ECDSA P-256)")
    return key


def _spki(public_key):
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def same_key(cert, key):
    return _spki(cert.public_key()) == _spki(key.public_key())


def issued_by(cert, issuer):
    """Whether issuer's key signed cert (and issuer is named as its issuer)."""
    try:
        cert.verify_directly_issued_by(issuer)
        return True
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False


def chain_problem(chain, ca):
    """Why the leaf chain[0] (with the intermediates after it) does not lead to the CA, or None."""
    links = list(chain)
    if links[-1].fingerprint(hashes.SHA256()) == ca.fingerprint(hashes.SHA256()):
        links = links[:-1]  # the file ends with the CA itself
    for child, parent in zip(links, links[1:] + [ca]):
        if not issued_by(child, parent):
            return (f"{describe(child)} was not signed by {describe(parent)}" if parent is not ca
                    else f"it was not signed by the CA {describe(ca)}")
    return None


def describe(cert):
    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return repr(cn[0].value) if cn else cert.subject.rfc4514_string() or "(no subject)"


def is_ca(cert):
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def server_and_client(cert):
    """Whether cert may serve TLS and be presented as a client's (no extendedKeyUsage means any use)."""
    try:
        uses = set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        return True
    return {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH} <= uses


def validity_problem(cert, margin_days, at=None):
    """Why cert cannot be used now, or for the next margin_days days, or None."""
    at = at or now()
    if cert.not_valid_before_utc > at:
        return f"is not valid before {_day(cert.not_valid_before_utc)} (is this machine's clock right?)"
    if cert.not_valid_after_utc <= at:
        return f"expired on {_day(cert.not_valid_after_utc)}"
    # As a difference: at + a margin of a billion days would overflow datetime (tls_expiry_margin_days is a count).
    if cert.not_valid_after_utc - at <= datetime.timedelta(days=min(margin_days, datetime.timedelta.max.days)):
        return (f"expires on {_day(cert.not_valid_after_utc)}, within tls_expiry_margin_days ({margin_days}): "
                "connections to this node would start failing then")
    return None


def _day(when):
    return when.strftime("%Y-%m-%d %H:%M UTC")


def until(cert):
    return _day(cert.not_valid_after_utc)


def names_in(cert):
    """The certificate's subject alternative names as text (DNS names, IP addresses)."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [str(v) for v in san.get_values_for_type(x509.DNSName)] + \
           [str(v) for v in san.get_values_for_type(x509.IPAddress)]


def covers(cert, name):
    """Whether a TLS client dialing `name` accepts cert. Ray's gRPC accepts an IP address as an IPAddress SAN
    and as a DNSName SAN holding its text (measured with both); DNS names compare without case, a wildcard
    standing for the leftmost label only. The subject's CN is not looked at (gRPC does not either when the
    certificate has SANs, and ours always do)."""
    try:
        wanted = ipaddress.ip_address(name)
    except ValueError:
        wanted = None
    for have in names_in(cert):
        if wanted is not None:
            try:
                if ipaddress.ip_address(have) == wanted:
                    return True
            except ValueError:
                pass
            continue
        have, name_l = have.lower().rstrip("."), name.lower().rstrip(".")
        if have == name_l or (have.startswith("*.") and "." in name_l and name_l.split(".", 1)[1] == have[2:]):
            return True
    return False
