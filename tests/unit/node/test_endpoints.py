"""The addresses a node prints for a user to copy (`status`, the ready file): URLs that name its address and
port, an IPv6 one in brackets."""

import urllib.parse

import pytest

from seedcore_boot.config.addresses import parse_head_address
from seedcore_boot.config.settings import resolve
from seedcore_boot.node import flow


@pytest.mark.parametrize("node_ip", ["10.0.0.5", "fd00::5"])
def test_a_heads_endpoints_are_urls_that_name_its_address_and_port(node_ip):
    """http://fd00::5:8265 was what an IPv6 head printed: no URL (urllib cannot read its port)."""
    s = resolve({"dashboard_host": "0.0.0.0"}, {}).settings
    out = flow.endpoints_of(s, "head", node_ip)
    assert parse_head_address(out["gcs"]) == (node_ip, s.gcs_port)
    for name, port in [("dashboard", s.dashboard_port), ("client", s.client_port),
                       ("metrics", s.metrics_export_port), ("dashboard_metrics", s.dashboard_metrics_port)]:
        url = urllib.parse.urlsplit(out[name])
        assert (url.hostname, url.port) == (node_ip, port), name
