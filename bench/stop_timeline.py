"""Where a head's stop goes: after SIGTERM, when each process of the node disappears, seedcore-boot's head
(--no-serve) against plain `ray start --head --block`, each on a fresh namespaced host, alternating.

    python bench/stop_timeline.py [REPS]        (root; default 2)

Prints, per run, the last six processes to go with their seconds after the SIGTERM, and the total.
"""

import os
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from bench import hosts  # noqa: E402
from tests.nshost import NsHost  # noqa: E402


def commands(host):
    out = {}
    for p in host.processes():
        try:
            out[p.pid] = " ".join(p.cmdline())[:90]
        except Exception:  # noqa: BLE001 - gone meanwhile
            pass
    return out


def one(side):
    host = NsHost(f"stop-{side}")
    try:
        if side == "ours":
            proc = host.spawn([*hosts.BOOT, "head", "--no-serve"])
            proc.wait_line("head ready", 120)
        else:
            proc = host.spawn(hosts.plain_argv("head")[0], env=hosts.UNBUFFERED)
            proc.wait_line(hosts.MARKER, 120)
            time.sleep(1.5)  # its endpoints come up meanwhile, as ours are by "head ready"
        time.sleep(1)
        before = commands(host)
        t0 = time.monotonic()
        proc.signal(signal.SIGTERM)
        gone = {}
        while True:
            now = commands(host)
            for pid in before:
                if pid not in now and pid not in gone:
                    gone[pid] = time.monotonic() - t0
            if not now or time.monotonic() - t0 > 30:
                break
            time.sleep(0.01)
        for pid, t in sorted(gone.items(), key=lambda x: x[1])[-6:]:
            print(f"{side:5} {t:5.2f} s  {before[pid]}")
        print(f"{side:5} all gone after {max(gone.values()):.2f} s\n", flush=True)
    finally:
        host.close()


if __name__ == "__main__":
    for _ in range(int(sys.argv[1]) if len(sys.argv) > 1 else 2):
        for side in ("ours", "plain"):
            one(side)
