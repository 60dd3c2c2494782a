"""Cluster DNS for the emulated pods: `python3 dns.py RECORDS.json` answers A queries on UDP 53 from the
records file ({"name.ns.svc.cluster.local": "ip"}), which kubelet.py rewrites as Services gain and lose
ready endpoints. As kube-dns does for a Service without endpoints, a name that is not there is NXDOMAIN; a
name that is there answers AAAA and other types with no records (NOERROR), so resolvers go on to the A
answer. TTL 1 s: nothing caches a stale endpoint for long. Pods use it through Docker's embedded DNS, which
forwards names it does not know (not container names) to the --dns server.

Runs inside a container (stdlib only); the file is read on every query, so updates need no signal.
"""

import json
import os
import socket
import struct
import sys


def answer(query, records):
    tid, flags = struct.unpack(">HH", query[:4])
    i, labels = 12, []
    while query[i]:
        n = query[i]
        labels.append(query[i + 1:i + 1 + n].decode("ascii", "replace"))
        i += 1 + n
    qtype = struct.unpack(">H", query[i + 1:i + 3])[0]
    question = query[12:i + 5]
    name = ".".join(labels).lower().rstrip(".")
    ip = records.get(name)
    rd = flags & 0x0100
    if ip and qtype == 1:  # A
        rr = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 1, 4) + socket.inet_aton(ip)
        return struct.pack(">HHHHHH", tid, 0x8400 | rd | 0x80, 1, 1, 0, 0) + question + rr
    rcode = 0 if ip else 3  # NOERROR with no answer, or NXDOMAIN
    return struct.pack(">HHHHHH", tid, 0x8400 | rd | 0x80 | rcode, 1, 0, 0, 0) + question


def write_records(path, records):
    """Replace the records file at once (a query never reads half of it); readable by the server's user."""
    with open(f"{path}.tmp", "w", encoding="utf-8") as fh:
        json.dump(records, fh)
    os.chmod(f"{path}.tmp", 0o644)
    os.replace(f"{path}.tmp", path)


def main(path):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("0.0.0.0", 53))
    print("dns ready", flush=True)
    while True:
        query, peer = sock.recvfrom(512)
        try:
            with open(path, encoding="utf-8") as fh:
                records = json.load(fh)
        except (OSError, ValueError):
            records = {}
        try:
            sock.sendto(answer(query, records), peer)
        except (IndexError, struct.error):
            continue  # not a query we can read: no answer, as a server that dropped it


if __name__ == "__main__":
    main(sys.argv[1])
