"""HOST:PORT as it is dialed and shown: an IPv6 address in brackets, everywhere one is written."""

import pytest

from seedcore_boot.config.addresses import host_port, parse_head_address


@pytest.mark.parametrize("host,port,text", [
    ("ray-head", 6379, "ray-head:6379"), ("10.0.0.5", 8265, "10.0.0.5:8265"),
    ("fd00::5", 6379, "[fd00::5]:6379"), ("::1", 1, "[::1]:1"),
])
def test_an_ipv6_address_is_bracketed_and_reads_back_as_it_was(host, port, text):
    assert host_port(host, port) == text
    assert parse_head_address(text) == (host, port)
