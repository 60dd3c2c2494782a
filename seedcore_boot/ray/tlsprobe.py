"""Why a gRPC call to a Ray port failed in the TLS handshake: the cause, in words a user can act on."""

import socket
import ssl

# What gRPC says when the call reached the port and then failed at TLS (measured against Ray 2.20's GCS):
# "Socket closed" (a plain client at a TLS server; a server refusing our certificate), "Tls handshake failed
# ... CERTIFICATE_VERIFY_FAILED" (a server certificate from another CA), "... WRONG_VERSION_NUMBER" (a TLS
# client at a plain server), "Hostname Verification Check failed" (a certificate not naming the address).
_REACHED = ("Socket closed", "andshake", "Hostname Verification", "WRONG_VERSION_NUMBER", "CERTIFICATE")
_H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_OTHER_CA = (2, 18, 19, 20, 21)  # X509_V_ERR_*: no issuer among the trusted ones, self-signed, no local issuer
_SAME_CA = "give every node the same CA: tls_ca_cert (and tls_ca_key) from one `seedcore-boot tls init`"


def handshake_failure(ip, port, detail, client, timeout=2.0):
    """(cause, fix) when a failed call to ip:port failed in the TLS handshake, else None. client: our TLS
    (gcsprobe.use_tls: paths of cert, key, CA, and the name we dial), or None when we speak plain gRPC.

    gRPC's words are vague where it matters ("Socket closed" both for a plain client at a TLS server and
    for a server refusing our certificate), so a handshake of our own (Python's ssl, ALPN h2 as gRPC)
    tells them apart. Measured against Ray 2.20's GCS: with the right certificate the server sends its
    HTTP/2 SETTINGS after our preface; a certificate it refuses (another CA) or none, and it closes the
    connection right after the TLS 1.3 handshake; a plain server answers a ClientHello with bytes that are
    no TLS record (WRONG_VERSION_NUMBER)."""
    if not any(mark in detail for mark in _REACHED):
        return None  # refused, unreachable, timed out: the head is not there (yet); not a TLS matter
    if "Hostname Verification" in detail:
        name = client.server_name if client and client.server_name else ip
        return (f"the head's certificate does not name {name}, the address this node dials it by",
                f"put {name} in the head's tls_dns_names (or in its tls_cert)")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False  # gRPC checks the name (above); here only the CA and the handshake
    ctx.set_alpn_protocols(["h2"])
    try:
        if client:
            ctx.load_verify_locations(cafile=client.paths[2])
            ctx.load_cert_chain(client.paths[0], client.paths[1])
        else:
            ctx.verify_mode = ssl.CERT_NONE
        raw = socket.create_connection((ip, port), timeout=timeout)
    except OSError:  # ssl.SSLError included (our files are gone?): no diagnosis, the wait goes on
        return None
    with raw:
        try:
            conn = ctx.wrap_socket(raw)
        except ssl.SSLCertVerificationError as exc:
            if exc.verify_code in _OTHER_CA:
                return (f"the head's certificate is not signed by this node's CA ({exc.verify_message}): the head "
                        "and this node use different CAs", _SAME_CA)
            return (f"this node refuses the head's certificate: {exc.verify_message}",
                    "restart the head so that it issues itself a new certificate, or fix its tls_cert")
        except ssl.SSLError as exc:
            if client and "WRONG_VERSION_NUMBER" in str(exc):
                return ("the head does not speak TLS (tls is off there) but this node does",
                        "turn tls on for every node of the cluster, or off for all of them")
            return None
        except OSError:
            return None
        with conn:
            if not client:
                return ("the head speaks mutual TLS and this node does not (tls is off here)",
                        "turn tls on here with the cluster's CA (tls, tls_ca_cert, tls_ca_key)")
            try:
                conn.settimeout(timeout)
                conn.sendall(_H2_PREFACE)
                answered = conn.recv(9)
            except OSError:  # ssl.SSLError included: an alert in place of an answer
                answered = b""
    if not answered:
        return ("the head refused this node's certificate: it is not signed by the head's CA (the CAs differ)",
                _SAME_CA)
    return None
