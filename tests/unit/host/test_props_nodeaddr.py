"""psutil's interface lists (psutil.net_if_addrs()) as any machine may give them: any family (AF_PACKET's MAC
addresses too), a netmask as an address of either family, as a prefix length or None, scope ids on addresses
and netmasks, names Docker gives its bridges and others."""

import ipaddress
import socket
from collections import namedtuple

from hypothesis import given, strategies as st

from seedcore_boot.host import nodeaddr
from tests.props import any_text, result_or_boot_error

Addr = namedtuple("Addr", "family address netmask broadcast ptp")  # psutil's snicaddr

v4 = st.ip_addresses(v=4).map(str)
v6 = st.ip_addresses(v=6).map(str)
scope = st.sampled_from(["", "%eth0", "%docker0", "%1", "%"])
mask4 = st.integers(0, 32).map(lambda n: str(ipaddress.IPv4Network(f"0.0.0.0/{n}").netmask))
mask6 = st.integers(0, 128).map(lambda n: str(ipaddress.IPv6Network(f"::/{n}").netmask))
address = st.one_of(v4, st.tuples(v6, scope).map("".join), any_text,
                    st.just("02:42:41:a1:e2:b2"))  # a MAC address, as AF_PACKET gives it
netmask = st.one_of(st.none(), mask4, mask6, st.tuples(mask6, scope).map("".join), v4, v6,
                    st.integers(0, 200).map(str), any_text)
family = st.sampled_from([socket.AF_INET, socket.AF_INET6, socket.AF_PACKET, 0, 99])
entry = st.builds(Addr, family, address, netmask, st.none() | v4, st.none() | v4)
name = st.one_of(st.sampled_from(["docker0", "docker_gwbridge", "br-0123456789ab", "eth0", "lo", "wg0", "br-lan"]),
                 any_text)
interfaces = st.dictionaries(name, st.lists(entry, max_size=3), max_size=3)


@given(interfaces, st.one_of(v4, v6, any_text), st.none() | v4 | v6 | any_text, st.booleans())
def test_any_interface_list_gives_an_answer(interfaces, ip, head_ip, detected):
    result_or_boot_error(nodeaddr.docker_bridges, interfaces)
    why = result_or_boot_error(nodeaddr.unreachable, ip, interfaces, head_ip, detected)
    assert why is None or isinstance(why, str)
    assert result_or_boot_error(nodeaddr.host_networked, interfaces, markers=()) is False


@given(st.integers(0, 32), v4)
def test_an_ipv4_netmask_in_either_form_gives_its_prefix(prefix, ip):
    mask = str(ipaddress.IPv4Network(f"0.0.0.0/{prefix}").netmask)
    expect = ipaddress.ip_network(f"{ip}/{prefix}", strict=False)
    assert nodeaddr.interface_network(socket.AF_INET, ip, mask) == expect
    assert nodeaddr.interface_network(socket.AF_INET, ip, str(prefix)) == expect


@given(st.integers(0, 128), v6, scope)
def test_an_ipv6_netmask_as_psutil_writes_it_gives_its_prefix(prefix, ip, zone):
    mask = str(ipaddress.IPv6Network(f"::/{prefix}").netmask)
    expect = ipaddress.ip_network(f"{ip}/{prefix}", strict=False)
    assert nodeaddr.interface_network(socket.AF_INET6, ip + zone, mask) == expect


@given(interfaces)
def test_every_bridge_address_found_is_inside_its_network(interfaces):
    for ip, (bridge, network) in nodeaddr.docker_bridges(interfaces).items():
        assert bridge in interfaces and ipaddress.ip_address(ip) in network
