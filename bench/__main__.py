"""Every benchmark against its plain-Ray baseline, in one run.

    python -m bench [--reps N] [--only CASE[,CASE]] [--out FILE.json]    (root; from the checkout)
    python -m bench --readme FILE.json                                   (regenerate the table of docs/benchmarks.md)

Cases: head (no Serve: marker, ready, stop, supervisor RSS, CLI latency, the start timeline), serve (first 200,
stop with Serve, preflight of the full plan, the start timeline), cluster (head + 1 and 8 workers on a LAN of
hosts: every node ALIVE, each worker's join, the head's CPU and memory; worker stop), join (a
worker's join after the head's GCS is up), restart (a head's host killed and restarted, without and with
Redis; ~3 min a rep, only with --only restart), drain (a worker holding a Serve replica stopped under load,
plain against ours; ~1.5 min a rep, only with --only drain), tls (a head with Serve, a worker's join and
Serve requests/s with mutual TLS against without; ~1.5 min a rep, only with --only tls), partition (a worker holding a
Serve replica cut off from its head for 10, 30 and 50 s under load, plain against ours; ~9 min a rep, only with
--only partition). Each rep runs on fresh
namespaced hosts (tests/nshost.py), seedcore-boot and plain Ray alternating. Prints min / median / max and ratios, writes one JSON file
(bench/results/<UTC timestamp>.json unless --out).
"""

import argparse
import importlib
import json
import os
import platform
import shlex
import sys
import time
from datetime import datetime, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from bench import report, timeline  # noqa: E402

CASES = {"head": "bench.head", "serve": "bench.serve200", "cluster": "bench.cluster", "join": "bench.join",
         "restart": "bench.restart", "drain": "bench.drain", "tls": "bench.tls", "partition": "bench.partition"}
DEFAULT = ["head", "serve", "cluster", "join"]
PAGE = os.path.join(ROOT, "docs", "benchmarks.md")  # its "## Performance" section holds the table


def machine():
    mem = None
    try:
        with open("/proc/meminfo") as fh:
            mem = int(fh.readline().split()[1]) / 2 ** 20
    except (OSError, ValueError, IndexError):
        pass
    info = {"nproc": os.cpu_count(), "memory_gib": mem, "kernel": platform.release(),
            "python": platform.python_version()}
    try:
        import ray

        info["ray"] = ray.__version__
    except ImportError:
        pass
    return info


def source():
    """The commit measured, and whether seedcore_boot/ differed from it (the editable install runs the tree)."""
    import subprocess

    def git(*a):
        out = subprocess.run(["git", "-C", ROOT, *a], capture_output=True, text=True)
        return out.stdout.strip() if out.returncode == 0 else None

    import seedcore_boot

    return {"commit": git("rev-parse", "HEAD"), "seedcore_boot": os.path.dirname(seedcore_boot.__file__),
            "seedcore_boot_changed": bool(git("status", "--porcelain", "--", "seedcore_boot"))}


def log(msg):
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {msg}", flush=True)


def run(args, argv):
    names = DEFAULT if not args.only else [n.strip() for n in ",".join(args.only).split(",") if n.strip()]
    unknown = [n for n in names if n not in CASES]
    if unknown:
        sys.exit(f"unknown case(s) {', '.join(unknown)}; known: {', '.join(CASES)}")
    if os.geteuid() != 0:
        sys.exit("the benchmarks make namespaced hosts: run as root")
    from tests.nshost import can_make_hosts

    ok, why = can_make_hosts()
    if not ok:
        sys.exit(why)
    c = report.Collector()
    load_before = os.getloadavg()
    t0 = time.monotonic()
    started = datetime.now(timezone.utc)
    durations = {}
    for name in names:
        t = time.monotonic()
        log(f"case {name}: {args.reps} rep(s)")
        importlib.import_module(CASES[name]).run(c, args.reps, log)
        durations[name] = round(time.monotonic() - t, 1)
        log(f"case {name}: {durations[name]:.0f} s")
    doc = {"date": started.strftime("%Y-%m-%d %H:%M UTC"), "command": "python -m bench " + shlex.join(argv),
           "reps": args.reps, "cases": names, "case_duration_s": durations,
           "duration_s": round(time.monotonic() - t0, 1), "machine": dict(machine(), load_before=load_before, load_after=os.getloadavg()), "source": source(), "metrics": c.metrics(),
           "timelines": c.timelines()}
    doc["command"] = doc["command"].strip()
    print()
    for m in doc["metrics"]:
        print("\n".join(report.print_lines(m)))
    for tl in doc["timelines"]:
        print("\n" + "\n".join(timeline.tables(tl)))
    out = args.out or os.path.join(HERE, "results", started.strftime("%Y%m%dT%H%M%SZ") + ".json")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as fh:
        json.dump(doc, fh, indent=1)
        fh.write("\n")
    print(f"\nwrote {out} ({doc['duration_s'] / 60:.1f} min); the table of docs/benchmarks.md: python -m bench --readme {out}")


def readme(path, target):
    with open(path) as fh:
        doc = json.load(fh)
    with open(target) as fh:
        text = fh.read()
    new = report.update_page(text, doc)
    with open(target, "w") as fh:
        fh.write(new)
    print(f"{target}: table regenerated from {path}")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--reps", type=int, default=3, help="repetitions of each variant (default 3)")
    p.add_argument("--only", action="append", metavar="CASE", help=f"run only these cases ({', '.join(CASES)}); "
                   "repeat or comma-separate")
    p.add_argument("--out", metavar="FILE.json", help="where to write the results")
    p.add_argument("--readme", metavar="FILE.json", help="regenerate the table of docs/benchmarks.md from this file and exit")
    p.add_argument("--readme-file", default=PAGE, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.readme:
        readme(args.readme, args.readme_file)
        return
    run(args, argv)


if __name__ == "__main__":
    main()
