"""Where a start goes, process by process: a sampler that runs inside a host (tests.nshost) beside the node.

Every STEP seconds it reads the host's /proc: each process's start time (/proc/PID/stat starttime, in clock
ticks since boot, turned into the machine's monotonic clock: the same clock bench/hosts stamps lines with),
its command line (Ray's workers retitle themselves "ray::ServeController" and so on once they run), its CPU
seconds (utime + stime), and the TCP ports in LISTEN state (/proc/net/tcp, tcp6): a new one is traced to the
process holding the socket, and the first sight of it is "when its port first answered" (a connect succeeds
from then on). It stops when /tmp/timeline-stop exists and prints one JSON line.

Its own CPU is reported beside the rest (about 1-3 % of a core at 20 ms); bench/timeline.py turns the JSON
into the timeline and the floor.
"""

import json
import sys

STOP_FILE = "/tmp/timeline-stop"
STEP = 0.02

SAMPLER = r"""
import json, os, socket, struct, sys, time
stop_file, limit, step = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
HZ = os.sysconf("SC_CLK_TCK")
me = os.getpid()
off = time.clock_gettime(time.CLOCK_BOOTTIME) - time.monotonic()  # starttime counts from boot
procs, inodes = {}, {}


def changing(cmd):  # a Ray worker's title, or a Python that will exec or retitle itself
    return cmd.startswith("ray::") or "_worker.py" in cmd or not cmd


def stat(pid):
    with open(f"/proc/{pid}/stat") as f:
        s = f.read()
    rest = s[s.rindex(")") + 2:].split()  # after "pid (comm) ": state ppid ... utime(11) stime(12) starttime(19)
    return int(rest[1]), (int(rest[11]) + int(rest[12])) / HZ, int(rest[19]) / HZ - off


DIAG = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 4)  # NETLINK_SOCK_DIAG: what `ss -lt` asks


def listening():
    # {socket inode: port} of the TCP sockets in LISTEN, from the kernel's sock_diag (reading /proc/net/tcp
    # walks every socket of the machine: ~2 ms a read here, most of this sampler's CPU before)
    out = {}
    for family in (socket.AF_INET, socket.AF_INET6):
        # inet_diag_req_v2: family, IPPROTO_TCP, no extensions, states = 1 << TCP_LISTEN, a zero socket id
        req = struct.pack("=BBBBI", family, socket.IPPROTO_TCP, 0, 0, 1 << 10) + bytes(48)
        DIAG.send(struct.pack("=IHHII", 16 + len(req), 20, 0x301, 1, 0) + req)  # SOCK_DIAG_BY_FAMILY, DUMP
        done = False
        while not done:
            data, off = DIAG.recv(1 << 16), 0
            while off + 16 <= len(data):
                size, kind = struct.unpack_from("=IH", data, off)
                if kind in (2, 3):  # NLMSG_ERROR, NLMSG_DONE
                    done = True
                    break
                # inet_diag_msg: 4 bytes, then the socket id (sport first, big-endian), ..., inode at 68
                port, = struct.unpack_from(">H", data, off + 20)
                inode, = struct.unpack_from("=I", data, off + 16 + 68)
                out[str(inode)] = port
                off += (size + 3) & ~3
    return out


def owner(inode):
    want = f"socket:[{inode}]"
    for pid in sorted(procs):
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    if os.readlink(f"/proc/{pid}/fd/{fd}") == want:
                        return pid
                except OSError:
                    pass
        except OSError:
            pass
    return None


print("polling", flush=True)
end = time.monotonic() + limit
while time.monotonic() < end and not os.path.exists(stop_file):
    now = time.monotonic()
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) in (1, me):
            continue
        pid = int(name)
        try:
            ppid, cpu, spawned = stat(pid)
            p = procs.get(pid)
            # The command line only while it can change: a fresh fork before its exec, and Ray's workers,
            # which retitle themselves for each task or actor they run.
            if p is None or now - p["spawned"] < 0.5 or changing(p["titles"][-1][1]):
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    cmd = f.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()[:160]
        except (OSError, ValueError, IndexError):
            continue
        if p is None:
            p = procs[pid] = {"spawned": spawned, "ppid": ppid, "titles": [[now, cmd]], "cpu": [], "ports": {}}
        elif cmd and p["titles"][-1][1] != cmd:
            p["titles"].append([now, cmd])
        cmd = ""
        if not p["cpu"] or p["cpu"][-1][1] != cpu:
            p["cpu"].append([now, cpu])
        p["seen"] = now
    for inode, port in listening().items():
        if inode not in inodes:
            pid = owner(inode)
            inodes[inode] = pid
            if pid is not None:
                procs[pid]["ports"].setdefault(str(port), now)
    time.sleep(step)
t = os.times()
print(json.dumps({"end": time.monotonic(), "sampler_cpu": t.user + t.system, "procs": procs}), flush=True)
"""


def start(host, limit=300):
    """The sampler, running on `host` once it says so."""
    proc = host.spawn([sys.executable, "-c", SAMPLER, STOP_FILE, str(limit), str(STEP)])
    proc.wait_line("polling", 60)
    return proc


def collect(host, proc, timeout=30):
    """Stop the sampler; its JSON document."""
    host.write(STOP_FILE, "")
    line = proc.wait_line(lambda l: l.startswith("{"), timeout)
    proc.wait(10)
    return json.loads(line)
