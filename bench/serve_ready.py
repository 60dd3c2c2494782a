"""Time from command start to the first 200 on the sample app's /health:
`seedcore-boot head` against the same thing by hand (`ray start --head` with the same ports, then
`serve deploy`, then polling), in the same run, alternating, each repetition on a fresh throwaway host.

    python bench/serve_ready.py [REPS]        (root; prints each time and the ratio of medians)

Target (issue 3): seedcore-boot at most 0.85 of the hand-run time.
"""

import json
import os
import statistics
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from seedcore_boot import node  # noqa: E402
from seedcore_boot.settings import resolve  # noqa: E402
from tests.nshost import NsHost  # noqa: E402

# Runs inside the host: start, then poll /health every 50 ms; print the seconds to the first 200.
ONE_RUN = r"""
import json, os, subprocess, sys, time, urllib.request
mode, argv, config = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
bindir = os.path.dirname(sys.executable)
t0 = time.monotonic()
if mode == "seedcore":
    subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
else:
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    subprocess.run([os.path.join(bindir, "serve"), "deploy", config], stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=True)
while True:
    try:
        with urllib.request.urlopen("http://127.0.0.1:8000/health", timeout=1) as r:
            if r.status == 200:
                break
    except Exception:
        pass
    if time.monotonic() - t0 > 120:
        print("timeout"); sys.exit(1)
    time.sleep(0.05)
print(f"{time.monotonic() - t0:.3f}")
"""


def main():
    reps = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    plan = node.make_plan(resolve({"serve_http_host": "127.0.0.1"}, {}), "head",
                          ray=os.path.join(os.path.dirname(sys.executable), "ray"))
    by_hand = [a for a in plan.argv if a != "--block"]
    ours = [sys.executable, "-m", "seedcore_boot", "head", "--serve-http-host", "127.0.0.1"]
    config_json = json.dumps(plan.serve)  # the very config the head PUTs, for `serve deploy` (YAML is JSON)
    times = {"seedcore": [], "by_hand": []}
    for i in range(reps):
        for mode, argv in (("seedcore", ours), ("by_hand", by_hand)):
            host = NsHost(f"bench-{mode}")
            try:
                host.write("/tmp/serve.yaml", config_json)
                out = host.python(ONE_RUN, mode, json.dumps(argv), "/tmp/serve.yaml", timeout=400)
                last = (out.stdout.strip().splitlines() or ["?"])[-1]
                if out.returncode != 0 or last == "timeout":
                    print(f"rep {i + 1} {mode}: failed ({last}) {out.stderr[-500:]}")
                    continue
                secs = float(last)
            finally:
                host.close()
            times[mode].append(secs)
            print(f"rep {i + 1} {mode:<9} {secs:6.2f} s", flush=True)
    ours_m, hand_m = statistics.median(times["seedcore"]), statistics.median(times["by_hand"])
    print(f"median: seedcore-boot {ours_m:.2f} s, by hand {hand_m:.2f} s, ratio {ours_m / hand_m:.2f} "
          f"(target <= 0.85)")


if __name__ == "__main__":
    main()
