"""The address a node advertises to the cluster: the setting, or what Ray will detect, printed before Ray
starts, and refused where the other machines could never reach it (loopback, a Docker bridge's address).

The GCS, the other nodes and Prometheus reach a node at this one address (its raylet, object manager,
workers, metrics export). A worker on host networking that advertised docker0's 172.17.0.1, or a head that
found no route and fell back to 127.0.0.1, would start "fine" and be unreachable.
"""

import errno
import ipaddress
import os
import re
import socket

from ..errors import EXIT_USAGE, BootError

# Ray 2.20's head detects its address towards 8.8.8.8:53, a worker towards its head's GCS
# (ray/_private/services.py, node_ip_address_from_perspective, called by `ray start`).
INTERNET = ("8.8.8.8", 53)
# docker0, the bridges of compose networks (br-<12 hex of the network id>) and swarm's docker_gwbridge: their
# addresses exist on this machine only, for its own containers.
_DOCKER_BRIDGE = re.compile(r"(docker0|docker_gwbridge|br-[0-9a-f]{12})$")
_FIX = ("set node_ip_address (--node-ip-address or $SEEDCORE_BOOT_NODE_IP_ADDRESS; SEEDCORE_NODE_IP with "
        "docker/ray-*-host.yml) to this machine's address on the network the machines share")


def detect(ip, port):
    """(address, how) as Ray 2.20 detects a node's address: the source address of a UDP "connect" towards
    ip:port (nothing is sent); when the network is unreachable the host name's address; else 127.0.0.1."""
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        try:
            s.connect((ip, port))
            return s.getsockname()[0], f"the route towards {ip}"
        except OSError as exc:
            if exc.errno == errno.ENETUNREACH:
                try:
                    name = socket.getfqdn(socket.gethostname())
                    return socket.gethostbyname(name), f"no route towards {ip}, so host name {name!r}"
                except (OSError, UnicodeError):  # UnicodeError: a host name with an empty or long label
                    pass
            return "127.0.0.1", f"no route towards {ip}"


def _interfaces():
    import psutil

    return psutil.net_if_addrs()


def docker_bridges(interfaces):
    """{address: (interface, its network)} of this machine's Docker bridges in sight of this process.

    interfaces: psutil.net_if_addrs() or a test's stand-in for it."""
    found = {}
    for name, addrs in interfaces.items():
        if not _DOCKER_BRIDGE.match(name):
            continue
        for a in addrs:
            network = interface_network(a.family, a.address, a.netmask)
            if network is not None:
                found[a.address.split("%", 1)[0]] = (name, network)
    return found


def interface_network(family, address, netmask):
    """The network of one psutil.net_if_addrs() entry, or None (not IP, or a form we cannot read).

    psutil gives a netmask as an address, IPv6 ones too ('ffff:ffff:ffff:ffff::', which ipaddress does not take
    after a '/'), sometimes None; an IPv6 link-local address carries its scope ('fe80::1%eth0'). No netmask:
    the address alone (it is still the interface's)."""
    if family not in (socket.AF_INET, socket.AF_INET6) or not isinstance(address, str):
        return None
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if not netmask:
            return ipaddress.ip_network(ip)
        mask = str(netmask).split("%", 1)[0]
        if mask.isdigit():
            prefix = int(mask)
        else:  # a mask written as an address of the same family: its leading one bits
            mask = ipaddress.ip_address(mask)
            if mask.version != ip.version:
                return None
            prefix = ip.max_prefixlen - (int(mask) ^ ((1 << ip.max_prefixlen) - 1)).bit_length()
        return ipaddress.ip_network(f"{ip}/{prefix}", strict=False)
    except ValueError:
        return None


def unreachable(ip, interfaces, head_ip=None, detected=False):
    """Why the nodes on other machines could not reach a node at `ip`, or None.

    A bridge's address is fine for a worker whose head is itself a container on that bridge (one machine).
    A detected address must be one of this machine's (Ray's fallback, the host name's address, need not be);
    a configured one is the user's to choose (behind a NAT it is not)."""
    try:
        if ipaddress.ip_address(ip).is_loopback:
            return "loopback"
    except ValueError:
        return None  # a host name: Ray resolves it itself; nothing to judge here
    bridges = docker_bridges(interfaces)
    if ip in bridges:
        name, network = bridges[ip]
        if head_ip is None or ipaddress.ip_address(head_ip) not in network:
            return f"the address of Docker's bridge {name} on this machine, which only its own containers reach"
    if detected and ip not in {a.address.split("%", 1)[0] for addrs in interfaces.values() for a in addrs}:
        return "not an address of this machine"
    return None


def check(settings, log, head=None, strict=True, interfaces=None):
    """Print the address this node will advertise, on which interface and why, and the host's other IPv4
    addresses (several NICs, a VPN: the user may mean another); refuse it (strict) when no other machine could
    reach it.

    head: a worker's head (ip, port), detection towards it; None for a head (towards the internet)."""
    interfaces = _interfaces() if interfaces is None else interfaces
    if settings.node_ip_address:
        ip, how = settings.node_ip_address, "node_ip_address"
    else:
        ip, how = detect(*(head or INTERNET))
        how = f"detected as Ray does: {how}"
    why = unreachable(ip, interfaces, head[0] if head else None, detected=not settings.node_ip_address)
    if why == "loopback" and not others(ip, interfaces):
        why = ("loopback: this host has no IPv4 address but loopback, and Ray 2.20 runs on IPv4 only"
               if _has_ipv6(interfaces) else "loopback: this host has no network address but loopback")
    if why and strict:
        raise BootError(f"this node would advertise {ip} ({how}), {why}: the nodes on other machines could never "
                        "reach it", _FIX)
    nic = interface_of(ip, interfaces)
    rest = others(ip, interfaces)
    # Loopback without strict is a one-machine cluster (a head on it is warned about after the start).
    log.event("network", f"node address {ip}" + (f" on {nic}" if nic else "") + f" ({how})"
              + (f": {why}" if why else "")
              + (f"; this host's other IPv4 addresses: {', '.join(f'{a} on {n}' for n, a in rest)} (set "
                 "node_ip_address to advertise another)" if rest else ""),
              level="warning" if why and not why.startswith("loopback") else "info")
    return ip


def _has_ipv6(interfaces):
    """An IPv6 address another machine could dial: not loopback, not link-local."""
    for addrs in interfaces.values():
        for a in addrs:
            if a.family == socket.AF_INET6:
                try:
                    address = ipaddress.ip_address(a.address.split("%", 1)[0])
                except ValueError:
                    continue
                if not (address.is_loopback or address.is_link_local):
                    return True
    return False


def interface_of(ip, interfaces):
    """The interface that holds `ip`, or None (a name, an address of another machine)."""
    return next((name for name, addrs in interfaces.items() for a in addrs
                 if a.family in (socket.AF_INET, socket.AF_INET6) and a.address.split("%", 1)[0] == ip), None)


def others(ip, interfaces):
    """[(interface, address)] of this host's IPv4 addresses other than `ip` that another machine might reach:
    not loopback, not a Docker bridge's (Ray 2.20 advertises IPv4 only: ray/_private/services.py,
    node_ip_address_from_perspective opens an AF_INET socket)."""
    found = []
    for name, addrs in interfaces.items():
        if _DOCKER_BRIDGE.match(name):
            continue
        for a in addrs:
            if a.family == socket.AF_INET and a.address != ip and not a.address.startswith("127."):
                found.append((name, a.address))
    return found


def ipv4_only(node_ip=None, head_host=None):
    """Refuse an IPv6 node or head address before anything runs. Measured on an IPv6-only host
    (tests/e2e/test_host_shapes.py): Ray 2.20's servers listen on IPv4 only (a worker's connect to the head's
    [fd00:200::1]:6379 is refused while the head runs), and a head given --node-ip-address fd00:200::1 dies
    in `ray start` with "Failed to start GCS" (its GCS client dials f"{ip}:{port}", unbracketed)."""
    for what, value in (("node_ip_address", node_ip), ("the head's address", head_host)):
        try:
            v6 = bool(value) and ipaddress.ip_address(value).version == 6
        except ValueError:
            v6 = False  # a name: Ray resolves it to IPv4 (getaddrinfo's first answer is ours to warn about)
        if v6:
            raise BootError(f"{what} {value} is IPv6, and Ray 2.20 runs on IPv4 only: its GCS and every other "
                            "server listen on IPv4, and `ray start` cannot dial an IPv6 GCS",
                            "give this node and its head IPv4 addresses (on an IPv6-only network Ray 2.20 runs "
                            "only as a one-machine cluster on 127.0.0.1)", EXIT_USAGE)


def check_worker(settings, head_ip, head_port, log, interfaces=None):
    """Refused unless the head itself is on loopback (a one-machine cluster)."""
    return check(settings, log, head=(head_ip, head_port), strict=unreachable(head_ip, {}) != "loopback",
                 interfaces=interfaces)


CONTAINER_MARKERS = ("/.dockerenv", "/run/.containerenv")  # the files Docker and podman put in a container


def host_networked(interfaces, markers=CONTAINER_MARKERS):
    """A container (Docker's or podman's marker file) that sees the machine's Docker bridges shares the
    machine's network: host networking. On a bridge network a container sees only its own interface."""
    return bool(docker_bridges(interfaces)) and any(os.path.exists(p) for p in markers)


def check_head(settings, log, interfaces=None):
    """Refused only on host networking, where other machines are the point; a head on a laptop may well be a
    one-machine cluster on loopback (node.security_warnings warns after the start)."""
    interfaces = _interfaces() if interfaces is None else interfaces
    return check(settings, log, strict=host_networked(interfaces), interfaces=interfaces)
