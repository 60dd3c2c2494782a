"""The settings errors no single value shows: values that clash, settings that need each other (TLS on needs
a CA and a way to a node certificate), and the addresses checked as settings.resolve finishes, so a bad
setting ends a start before anything runs."""

import re

from ..errors import usage_error
from .addresses import check_namespace, dns_names, parse_redis_address


def check(s, sources, pod=None):
    """The settings errors no single value shows (settings.resolve runs them once every layer is in)."""
    if s.min_worker_port > s.max_worker_port:
        raise usage_error(f"min_worker_port {s.min_worker_port} is above max_worker_port {s.max_worker_port}",
                          "swap them or widen the range")
    if s.redis_address:
        parse_redis_address(s.redis_address)
        if s.storage_namespace:
            check_namespace(s.storage_namespace)
    if s.redis_password and s.redis_password_file:
        raise usage_error(f"redis_password and redis_password_file are both set (from {sources['redis_password']} "
                          f"and {sources['redis_password_file']})", "keep one of them")
    if pod and pod.rayservice and (s.serve_app or s.serve_config is not None):
        name = "serve_app" if s.serve_app else "serve_config"
        raise usage_error(f"{name} is set (from {sources[name]}) but this head belongs to a RayService, whose "
                          "serveConfigV2 KubeRay deploys itself: two configs would replace each other",
                          f"put the applications in the RayService's serveConfigV2 and unset {name}")
    _check_tls(s, sources)
    if s.serve_app and s.serve_config is not None:
        raise usage_error("serve_app and serve_config are both set (from "
                          f"{sources['serve_app']} and {sources['serve_config']})", "keep one of them")


def _check_tls(s, sources):
    """TLS on needs the CA's certificate and a way to a node certificate."""
    if s.tls_cert and not s.tls_key or s.tls_key and not s.tls_cert:
        given, missing = ("tls_cert", "tls_key") if s.tls_cert else ("tls_key", "tls_cert")
        raise usage_error(f"{given} is set (from {sources[given]}) but {missing} is not", "set both, or neither "
                          "(then the node issues its own certificate from tls_ca_key)")
    bad = [n for n in dns_names(s) if not re.fullmatch(r"(\*\.)?[A-Za-z0-9_.:-]+", n)]
    if bad:
        raise usage_error(f"bad name {bad[0]!r} in tls_dns_names (from {sources['tls_dns_names']})",
                          "give DNS names or IP addresses, comma-separated (non-ASCII names in their xn-- form)")
    if not s.tls:
        return
    if not s.tls_ca_cert:
        raise usage_error("tls is on but tls_ca_cert is not set: every node needs the cluster CA's certificate",
                          "make a CA with `seedcore-boot tls init DIR`, then set tls_ca_cert=DIR/ca.crt and "
                          "tls_ca_key=DIR/ca.key (or $SEEDCORE_BOOT_TLS_CA_CERT, $SEEDCORE_BOOT_TLS_CA_KEY)")
    if not s.tls_ca_key and not s.tls_cert:
        raise usage_error("tls is on but this node has no way to a certificate",
                          "set tls_ca_key (the node issues its own certificate at start), or tls_cert and tls_key")
