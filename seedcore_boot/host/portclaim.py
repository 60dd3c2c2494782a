"""Claims on a node's planned ports, taken before the preflight and held while the node lives, so that two
seedcore-boot nodes in one network namespace never both start Ray on the same ports.

The preflight alone cannot see that: two workers started together (`--scale`, containers on host
networking) both find every port free, both wait for the head, and both start Ray, where every collision but
the GCS's is a half-start (Ray prints "Ray runtime started." with a component missing). A claim is an
abstract Unix socket named after the port: the kernel scopes those names to the network namespace, gives
each to one socket only, and frees it when its process dies, however it dies, so no claim outlives its node.
"""

import errno
import socket

from ..errors import usage_error

_PREFIX = "\0seedcore-boot/port/"


class Claims:
    def __init__(self, sockets=()):
        self._sockets = list(sockets)

    def close(self):
        for s in self._sockets:
            s.close()
        self._sockets = []


def claim(ports):
    """Claims on every planned port (lowest first, so two nodes with the same plan meet at the same port and
    exactly one of them goes on); a usage error naming the port when another node holds it."""
    held = []
    try:
        for p in sorted(ports, key=lambda p: p.port):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            held.append(s)
            try:
                s.bind(f"{_PREFIX}{p.port}")
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:  # no abstract names (not Linux): the preflight alone
                    Claims(held).close()
                    return Claims()
                raise usage_error(
                    f"port {p.port} ({p.name}) belongs to another seedcore-boot node in this network namespace "
                    "(on Docker's host networking: another Ray node on this machine)",
                    "run one Ray node per machine (docs/docker-hosts.md), or give this node ports of its own "
                    f"({p.setting} and the rest of its port plan)") from None
    except BaseException:
        Claims(held).close()
        raise
    return Claims(held)
