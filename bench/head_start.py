"""Head start-up: `ray start --head` (not blocking) until it returns, plain against how seedcore-boot runs it
(Ray's CLI through seedcore_boot.raycli, with rayenv.RAY_DEFAULTS), alternating, each on a fresh host.
Also reports the raylet's 1 s plasma-socket retry ("Starting object store" to "ObjectManager server started").

    python bench/head_start.py [REPS]        (root)
"""

import json
import os
import re
import statistics
import sys
from datetime import datetime

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from seedcore_boot import rayenv  # noqa: E402
from tests.nshost import NsHost  # noqa: E402

# Inside the host: run the start, print its seconds.
ONE_RUN = r"""
import json, subprocess, sys, time
argv, env = json.loads(sys.argv[1]), json.loads(sys.argv[2])
t0 = time.monotonic()
subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
print(f"{time.monotonic() - t0:.3f}")
"""
ARGS = ["start", "--head", "--include-dashboard=true", "--dashboard-host=127.0.0.1", "--temp-dir=/tmp/ray"]


def raylet_gap(host):
    text = host.read("/tmp/ray/session_latest/logs/raylet.out")

    def stamp(mark):
        line = next(l for l in text.splitlines() if mark in l)
        return datetime.strptime(re.search(r"\d\d:\d\d:\d\d,\d+", line).group(0), "%H:%M:%S,%f")

    return (stamp("ObjectManager server started") - stamp("Starting object store")).total_seconds()


def main():
    reps = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    bindir = os.path.dirname(sys.executable)
    base = {"PATH": os.environ.get("PATH", ""), "RAY_USAGE_STATS_ENABLED": "0"}
    modes = {
        "plain": ([os.path.join(bindir, "ray"), *ARGS], base),
        "seedcore": ([sys.executable, "-m", "seedcore_boot.raycli", *ARGS], dict(base, **rayenv.RAY_DEFAULTS)),
    }
    times = {m: [] for m in modes}
    gaps = {m: 0 for m in modes}
    for i in range(reps):
        for mode, (argv, env) in modes.items():
            host = NsHost(f"bench-{mode}")
            try:
                out = host.python(ONE_RUN, json.dumps(argv), json.dumps(env), timeout=120)
                if out.returncode != 0:
                    print(f"rep {i + 1} {mode}: failed {out.stderr[-300:]}")
                    continue
                secs, gap = float(out.stdout.strip().splitlines()[-1]), raylet_gap(host)
            finally:
                host.close()
            times[mode].append(secs)
            gaps[mode] += gap > 0.5
            print(f"rep {i + 1} {mode:<9} {secs:5.2f} s  raylet socket retry {gap:4.2f} s", flush=True)
    for mode in modes:
        print(f"{mode}: median {statistics.median(times[mode]):.2f} s, "
              f"raylet slept 1 s in {gaps[mode]} of {len(times[mode])}")


if __name__ == "__main__":
    main()
