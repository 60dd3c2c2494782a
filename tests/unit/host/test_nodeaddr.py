import io
import socket
from collections import namedtuple

import pytest

from seedcore_boot.config.settings import resolve
from seedcore_boot.errors import BootError
from seedcore_boot.host import nodeaddr
from seedcore_boot.log import Log

Addr = namedtuple("Addr", "family address netmask broadcast ptp")  # psutil.net_if_addrs()'s entries


def v4(address, netmask="255.255.255.0"):
    return Addr(socket.AF_INET, address, netmask, None, None)


# A machine on host networking, as a container there sees it: its LAN, docker0, a compose network's bridge,
# and a bridge that is not Docker's.
MACHINE = {"lo": [v4("127.0.0.1", "255.0.0.0")], "eth0": [v4("10.0.0.6")],
           "docker0": [v4("172.17.0.1", "255.255.0.0")], "br-0123456789ab": [v4("172.18.0.1", "255.255.0.0")],
           "br-lan": [v4("192.168.7.1")]}


def settings(**env):
    return resolve({}, {f"SEEDCORE_BOOT_{k.upper()}": v for k, v in env.items()}).settings


def run(fn, *args, **kwargs):
    out = io.StringIO()
    ip = fn(*args, Log(stream=out), **kwargs)
    return ip, out.getvalue()


def test_detection_is_the_route_towards_the_target():
    assert nodeaddr.detect("127.0.0.1", 6379) == ("127.0.0.1", "the route towards 127.0.0.1")


def test_a_worker_on_a_docker_bridge_is_refused_with_the_fix():
    with pytest.raises(BootError) as err:
        run(nodeaddr.check_worker, settings(node_ip_address="172.17.0.1"), "10.0.0.5", 6379, interfaces=MACHINE)
    text = str(err.value)
    assert err.value.exit_code == 1 and "\n" not in text
    assert "would advertise 172.17.0.1 (node_ip_address)" in text and "Docker's bridge docker0" in text
    assert "SEEDCORE_NODE_IP" in text and "--node-ip-address" in text


def test_a_compose_networks_bridge_counts_and_another_bridge_does_not():
    assert "br-0123456789ab" in nodeaddr.unreachable("172.18.0.1", MACHINE, "10.0.0.5")
    assert nodeaddr.unreachable("192.168.7.1", MACHINE, "10.0.0.5") is None


def test_a_bridge_address_is_fine_when_the_head_is_a_container_on_that_bridge():
    assert nodeaddr.unreachable("172.17.0.1", MACHINE, head_ip="172.17.0.2") is None
    assert nodeaddr.unreachable("172.17.0.1", MACHINE, head_ip="172.18.0.2") is not None


def test_a_worker_with_a_remote_head_refuses_loopback():
    with pytest.raises(BootError, match="would advertise 127.0.0.1 .*loopback"):
        run(nodeaddr.check_worker, settings(node_ip_address="127.0.0.1"), "10.0.0.5", 6379, interfaces=MACHINE)


def test_a_worker_of_a_head_on_loopback_is_one_machine_and_only_printed():
    ip, out = run(nodeaddr.check_worker, settings(), "127.0.0.1", 6379, interfaces=MACHINE)
    assert ip == "127.0.0.1"
    assert "[network" in out and "node address 127.0.0.1 on lo (detected as Ray does: the route towards 127.0.0.1)" in out


def test_the_address_is_printed_with_where_it_came_from():
    ip, out = run(nodeaddr.check, settings(node_ip_address="10.0.0.6"), interfaces=MACHINE)
    assert ip == "10.0.0.6" and "node address 10.0.0.6 on eth0 (node_ip_address)" in out


def test_a_detected_address_must_be_this_machines_a_configured_one_need_not():
    # Ray's fallback without a route is the host name's address, which may belong to no interface here.
    assert nodeaddr.unreachable("192.0.2.2", MACHINE, detected=True) == "not an address of this machine"
    assert nodeaddr.unreachable("192.0.2.2", MACHINE) is None  # behind a NAT, the user knows better
    assert nodeaddr.unreachable("10.0.0.6", MACHINE, detected=True) is None


def test_not_strict_prints_the_reason_instead_of_refusing():
    ip, out = run(nodeaddr.check, settings(node_ip_address="172.17.0.1"), strict=False, interfaces=MACHINE)
    assert ip == "172.17.0.1" and "node address 172.17.0.1 on docker0 (node_ip_address): the address of Docker's bridge" in out


def test_host_networking_is_a_container_that_sees_the_machines_bridges(tmp_path):
    marker = tmp_path / ".dockerenv"
    marker.write_text("")
    assert nodeaddr.host_networked(MACHINE, markers=(str(marker),))
    assert not nodeaddr.host_networked(MACHINE, markers=(str(tmp_path / "absent"),))  # the machine itself
    bridge_network_container = {"lo": MACHINE["lo"], "eth0": [v4("172.18.0.3", "255.255.0.0")]}
    assert not nodeaddr.host_networked(bridge_network_container, markers=(str(marker),))


def test_docker0s_ipv6_link_local_with_psutils_address_form_netmask_is_a_bridge_address():
    # issue 24 defect 1: docker0, down between containers, keeps this address; psutil gives the IPv6 netmask as
    # an address, which ipaddress does not take after a '/' (ValueError, a traceback from `head`).
    machine = {**MACHINE,
               "docker0": [v4("172.17.0.1", "255.255.0.0"),
                           Addr(socket.AF_INET6, "fe80::42:41ff:fea1:e2b2", "ffff:ffff:ffff:ffff::", None, None)],
               "br-0123456789ab": [Addr(socket.AF_INET6, "fe80::1%br-0123456789ab", "ffff:ffff:ffff:ffff::",
                                        None, None),
                                   Addr(socket.AF_INET6, "fd00:dead:beef::1", None, None, None)]}
    bridges = nodeaddr.docker_bridges(machine)
    assert str(bridges["fe80::42:41ff:fea1:e2b2"][1]) == "fe80::/64"
    assert str(bridges["fe80::1"][1]) == "fe80::/64"
    assert str(bridges["fd00:dead:beef::1"][1]) == "fd00:dead:beef::1/128"  # no netmask: the address itself
    assert str(bridges["172.17.0.1"][1]) == "172.17.0.0/16"
    ip, out = run(nodeaddr.check_head, settings(node_ip_address="10.0.0.6"), interfaces=machine)
    assert ip == "10.0.0.6" and "node address 10.0.0.6" in out


def test_an_interface_network_is_read_from_any_netmask_form():
    net = nodeaddr.interface_network
    assert str(net(socket.AF_INET, "10.1.2.3", "255.255.255.0")) == "10.1.2.0/24"
    assert str(net(socket.AF_INET, "10.1.2.3", "24")) == "10.1.2.0/24"
    assert str(net(socket.AF_INET6, "fd00::5", "ffff:ffff:ffff:ff00::")) == "fd00::/56"
    assert net(socket.AF_INET6, "fd00::5", "255.255.0.0") is None  # a mask of the other family
    assert net(socket.AF_INET, "10.1.2.3", "33") is None
    assert net(socket.AF_PACKET, "02:42:41:a1:e2:b2", None) is None  # a MAC address, not IP


# --- which NIC, and why (issue 24: several NICs, a VPN, an IPv6-only host) ---------------------------
def test_the_advertised_nic_is_named_and_the_other_ipv4_addresses_listed_but_not_dockers():
    shaped = dict(MACHINE, tun0=[v4("10.8.0.2")],
                  eth1=[v4("10.201.0.1"), Addr(socket.AF_INET6, "2001:db8::1", "ffff:ffff:ffff:ffff::", None, None)])
    ip, out = run(nodeaddr.check, settings(node_ip_address="10.0.0.6"), interfaces=shaped)
    assert "node address 10.0.0.6 on eth0 (node_ip_address); this host's other IPv4 addresses: " in out
    listed = out.split("other IPv4 addresses: ", 1)[1]
    for shown in ("192.168.7.1 on br-lan", "10.8.0.2 on tun0", "10.201.0.1 on eth1"):
        assert shown in listed
    for hidden in ("172.17.0.1", "172.18.0.1", "127.0.0.1", "2001:db8::1"):
        assert hidden not in listed
    assert nodeaddr.others("10.0.0.6", {"lo": MACHINE["lo"], "eth0": MACHINE["eth0"]}) == []


def test_a_host_without_ipv4_but_loopback_says_ray_is_ipv4_only():
    v6_only = {"lo": [v4("127.0.0.1", "255.0.0.0")],
               "eth0": [Addr(socket.AF_INET6, "fd00:200::1", "ffff:ffff:ffff:ffff::", None, None)]}
    ip, out = run(nodeaddr.check, settings(node_ip_address="127.0.0.1"), strict=False, interfaces=v6_only)
    assert "no IPv4 address but loopback, and Ray 2.20 runs on IPv4 only" in out
    with pytest.raises(BootError, match="no IPv4 address but loopback"):
        run(nodeaddr.check, settings(node_ip_address="127.0.0.1"), strict=True, interfaces=v6_only)
    offline = {"lo": v6_only["lo"], "eth0": [Addr(socket.AF_INET6, "fe80::1%eth0", "ffff:ffff:ffff:ffff::", None, None)]}
    ip, out = run(nodeaddr.check, settings(node_ip_address="127.0.0.1"), strict=False, interfaces=offline)
    assert "loopback: this host has no network address but loopback" in out


@pytest.mark.parametrize("node_ip,head", [("fd00:200::1", None), (None, "fd00:200::1"), ("::1", "10.0.0.1")])
def test_an_ipv6_node_or_head_address_is_a_usage_error(node_ip, head):
    with pytest.raises(BootError, match="is IPv6, and Ray 2.20 runs on IPv4 only") as err:
        nodeaddr.ipv4_only(node_ip, head)
    assert err.value.exit_code == 2


@pytest.mark.parametrize("node_ip,head", [(None, None), ("10.0.0.6", "ray-head"), (None, "10.0.0.1")])
def test_ipv4_addresses_and_names_pass(node_ip, head):
    nodeaddr.ipv4_only(node_ip, head)
