"""Where a head's stop goes: after SIGTERM, when each process of the node disappears, seedcore-boot's head
(--no-serve) against plain `ray start --head --block`, each on a fresh namespaced host, alternating.

    python bench/stop_timeline.py [REPS]          (root; default 2)
    python bench/stop_timeline.py --ray [REPS]    `ray start --head --block` alone: plain, with our
                                                  RAY_* defaults, and through seedcore_boot.ray.raycli

Prints, per run, the last six processes to go with their seconds after the SIGTERM, and the total; with
--ray, the seconds from SIGTERM to that `ray start`'s exit.
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


def ray_alone(label, argv, env):
    host = NsHost("stop-ray")
    try:
        proc = host.spawn(argv, env=dict(env, **hosts.UNBUFFERED))
        proc.wait_line(hosts.MARKER, 120)
        time.sleep(2.5)
        t0 = time.monotonic()
        proc.signal(signal.SIGTERM)
        proc.wait(30)
        print(f"{label:32} {time.monotonic() - t0:.2f} s", flush=True)
    finally:
        host.close()


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--ray"]
    reps = int(args[0]) if args else 2
    for _ in range(reps):
        if "--ray" in sys.argv:
            from seedcore_boot.node import rayenv

            argv = hosts.plain_argv("head")[0]
            ray_alone("plain", argv, {})
            ray_alone("plain, our RAY_* defaults", argv, rayenv.RAY_DEFAULTS)
            ray_alone("through seedcore_boot.ray.raycli",
                      [sys.executable, "-m", "seedcore_boot.ray.raycli", *argv[1:]], {})
        else:
            for side in ("ours", "plain"):
                one(side)
