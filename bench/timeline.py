"""The start timeline and the floor, from bench/sampler.py's JSON: pure (no clock, no processes), so
tests/unit/test_bench_timeline.py can pin it.

A run (one start of one side) becomes a summary:

    {"ready": s, "marker": s, "nproc": n, "kinds": {kind: {"n", "spawned", "answered", "began", "cpu"}},
     "links": {label: [wall s, CPU s]}, "sampler_cpu": s}

times in seconds from the command, CPU seconds until ready. A link is one step of a chain of waits that
cannot overlap (LINKS, CHAINS): the CPU one process spends between two events, e.g. the dashboard from the
GCS answering to its own port answering, from no earlier than where the link before it ended (what the
process did before that ran beside the chain); a single-threaded start (Python importing its modules)
cannot take less wall time than that CPU. The floor of a rep (floor()) is the larger of
  - the CPU that must be spent (each required kind's CPU, the lesser of the two sides) / the machine's cores,
  - the longest chain (CHAINS) of links, each link's CPU the lesser of the two sides;
and each side's distance from it is its ready minus the floor.
"""

import statistics

# What a process is, from its command lines (the first that says): Ray's components, then the rest.
_MARKS = [
    ("seedcore_boot.host.leftovers", "watchdog"), ("seedcore_boot.ray.raycli", "ray start"),
    ("bin/ray start", "ray start"),
    ("-m seedcore_boot", "seedcore-boot"), ("bin/seedcore-boot", "seedcore-boot"),
    ("bin/serve deploy", "serve deploy (CLI)"),
    ("/gcs_server ", "gcs_server"), ("/raylet ", "raylet"),
    ("dashboard/dashboard.py", "dashboard"), ("dashboard/agent.py", "dashboard_agent"),
    ("log_monitor.py", "log_monitor"), ("autoscaler/_private/monitor.py", "autoscaler_monitor"),
    ("autoscaler/v2/monitor.py", "autoscaler_monitor"), ("ray.util.client.server", "ray_client_server"),
    ("runtime_env/agent/main.py", "runtime_env_agent"),
]
_ROLES = [("SERVE_CONTROLLER_ACTOR", "serve controller"), ("ray::ServeController", "serve controller"),
          ("SERVE_PROXY_ACTOR", "serve proxy"), ("ray::ProxyActor", "serve proxy"),
          ("SERVE_REPLICA", "serve replica"), ("ray::ServeReplica", "serve replica")]
TASKS = "ray worker (tasks)"
IDLE = "ray worker (idle)"
HARNESS = "bench harness"
# Needed for a ready head or a running app, on either side; the rest (our supervisor and watchdog, the
# `serve deploy` CLI, workers Ray started and never used) is not work the start requires.
REQUIRED = ("ray start", "gcs_server", "raylet", "dashboard", "dashboard_agent", "runtime_env_agent", "log_monitor",
            "autoscaler_monitor", "ray_client_server", "serve controller", "serve proxy", "serve replica", TASKS)
ORDER = ("seedcore-boot", "watchdog") + REQUIRED[:9] + ("serve deploy (CLI)", TASKS, "serve controller",
                                                        "serve proxy", "serve replica", IDLE)

# label, kind whose CPU counts, from event, to event. Events: ("t0",), ("spawn"|"answered", kind),
# ("began", role or "task NAME"), ("at", "ready"|"first_200").
LINKS = [
    ("seedcore-boot until it spawns ray start", "seedcore-boot", ("t0",), ("spawn", "ray start")),
    ("ray start: Python, Ray's CLI, until gcs_server", "ray start", ("spawn", "ray start"), ("spawn", "gcs_server")),
    ("gcs_server until it answers", "gcs_server", ("spawn", "gcs_server"), ("answered", "gcs_server")),
    ("dashboard until it answers", "dashboard", ("answered", "gcs_server"), ("answered", "dashboard")),
    ("raylet until it spawns the agent", "raylet", ("answered", "gcs_server"), ("spawn", "dashboard_agent")),
    ("dashboard_agent until it answers", "dashboard_agent", ("spawn", "dashboard_agent"),
     ("answered", "dashboard_agent")),
    ("ray_client_server until it answers", "ray_client_server", ("answered", "gcs_server"),
     ("answered", "ray_client_server")),
    ("dashboard: the deploy, until the raylet spawns a worker", "dashboard", ("answered", "dashboard"),
     ("spawn", TASKS)),
    ("that worker: its start, then Serve's start task", TASKS, ("spawn", TASKS), ("began", "task _start_controller")),
    ("serve controller: a new worker, imports, __init__", "serve controller", ("began", "task _start_controller"),
     ("began", "serve controller")),
    ("serve proxy: until port 8000 answers", "serve proxy", ("began", "serve controller"),
     ("answered", "serve proxy")),
    ("serve replica: until the first 200", "serve replica", ("answered", "serve proxy"), ("at", "first_200")),
]
_LINK = {l[0]: l for l in LINKS}
_START = [l[0] for l in LINKS[:3]]
CHAINS = {  # each a sequence in time: a link starts where the one before it ended, at the earliest
    "head": [_START + [LINKS[3][0]], _START + [LINKS[4][0], LINKS[5][0]], _START + [LINKS[6][0]]],
    "serve": [_START + [l[0] for l in (LINKS[3], *LINKS[7:])]],
}


def kind_of(titles):
    """(kind, {role or "task NAME": first time}) of a process from its [[t, command line], ...].

    A worker is what it ran (its "ray::" titles); anything else is the last command line that names a kind
    (a fork shows its parent's until it execs: the raylet's, before a worker's Python)."""
    roles = {}
    for t, cmd in titles:
        for mark, role in _ROLES:
            if mark in cmd:
                roles.setdefault(role, t)
                break
        else:
            if cmd.startswith("ray::") and not cmd.startswith("ray::IDLE"):
                roles.setdefault(f"task {cmd[5:].split(' ', 1)[0].split('.', 1)[0]}", t)
    actors = [r for r in roles if not r.startswith("task ")]
    if actors:
        return actors[0], roles
    if roles:
        return TASKS, roles
    if any(cmd.startswith("ray::") for _, cmd in titles):
        return IDLE, roles
    for _, cmd in reversed(titles):
        for mark, kind in _MARKS:
            if mark in cmd + " ":
                return kind, roles
    if any("_worker.py" in cmd for _, cmd in titles):
        return IDLE, roles
    return HARNESS, roles


def cpu_at(series, t):
    """CPU seconds of one process at time t, from its [[t, cumulative CPU], ...] samples."""
    value = 0.0
    for ts, cpu in series:
        if ts > t:
            break
        value = cpu
    return value


def summarize(doc, t0, ready, marker=None, first_200=None, main_ports=None, nproc=None):
    """The run's summary (see the module's docstring); `main_ports` {kind: port} picks the port that says a
    process answers (else its first), times are monotonic seconds like the sampler's."""
    main_ports = main_ports or {}
    kinds, events, procs = {}, {("t0",): t0}, []
    at = {"ready": ready, "first_200": first_200}
    kind_by_pid = {pid: kind_of(p["titles"]) for pid, p in doc["procs"].items()}
    for pid, p in doc["procs"].items():
        kind, roles = kind_by_pid[pid]
        parent = kind_by_pid.get(str(p.get("ppid")))
        if parent and parent[0] == kind and kind not in (TASKS, IDLE) and not roles:
            continue  # a short-lived fork of it (ctypes' ldconfig, say), seen before or never after its exec
        ports = {int(k): v for k, v in p["ports"].items()}
        want = main_ports.get(kind)
        answered = ports.get(want) if want in ports else (min(ports.values()) if ports else None)
        procs.append((kind, p))
        k = kinds.setdefault(kind, {"n": 0, "spawned": None, "answered": None, "began": None, "cpu": 0.0})
        k["n"] += 1
        k["cpu"] += cpu_at(p["cpu"], ready)
        began = min(roles.values()) if roles and kind not in (TASKS, IDLE) else None
        for key, value in (("spawned", p["spawned"]), ("answered", answered), ("began", began)):
            if value is not None and (k[key] is None or value < k[key]):
                k[key] = value
        for role, t in roles.items():
            events[("began", role)] = min(t, events.get(("began", role), t))
    for kind, k in kinds.items():
        for key in ("spawned", "answered"):
            if k[key] is not None:
                events[("spawn" if key == "spawned" else key, kind)] = k[key]
    links = {}
    for chain in (c for chains in CHAINS.values() for c in chains):
        done = None  # where the link before ended: work a process did before that overlapped the chain
        for label in chain:
            _, kind, start, end = _LINK[label]
            a, b = (at.get(e[1]) if e[0] == "at" else events.get(e) for e in (start, end))
            if a is None or b is None:
                continue
            a = a if done is None else max(a, done)
            cpu = sum(cpu_at(p["cpu"], b) - cpu_at(p["cpu"], a) for k, p in procs if k == kind) if b > a else 0.0
            links[label] = [max(0.0, b - a), cpu]
            done = max(a, b)
    rel = {kind: {key: (v - t0 if key in ("spawned", "answered", "began") and v is not None else v)
                  for key, v in k.items()} for kind, k in kinds.items()}
    return {"ready": ready - t0, "marker": None if marker is None else marker - t0, "nproc": nproc,
            "kinds": {k: rel[k] for k in sorted(rel, key=_order) if k != HARNESS},
            "links": links, "sampler_cpu": doc.get("sampler_cpu")}


def _order(kind):
    return ORDER.index(kind) if kind in ORDER else len(ORDER)


def floor(ours, plain, chains, nproc):
    """{"cpu", "cpu_floor", "chain", "floor", "ours", "plain"} of one rep: the CPU that must be spent (s), it
    spread over `nproc` cores, the longest chain, the floor (the larger) and each side's ready - floor."""
    def least(a, b):
        return min(x for x in (a, b) if x is not None) if a is not None or b is not None else 0.0

    must = sum(least(ours["kinds"].get(k, {}).get("cpu"), plain["kinds"].get(k, {}).get("cpu"))
               for k in REQUIRED if k in ours["kinds"] or k in plain["kinds"])
    chain = max((sum(least(_cpu(ours, l), _cpu(plain, l)) for l in c) for c in chains), default=0.0)
    value = max(must / nproc, chain)
    return {"cpu": must, "cpu_floor": must / nproc, "nproc": nproc, "chain": chain, "floor": value,
            "ours": ours["ready"] - value, "plain": plain["ready"] - value}


def _cpu(run, label):
    link = run["links"].get(label)
    return None if link is None else link[1]


def _med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def _f(x, plus=False):
    return "-" if x is None else (f"{x:+.2f}" if plus else f"{x:.2f}")


def tables(timeline):
    """Markdown lines for one timeline {"title", "ours": [runs], "baseline": [runs], "floors": [...]}: every
    process (median over the reps: spawned / port answered / began its work, s after the command; CPU s until
    ready), then the chain (wall and CPU s of each link), then the floor."""
    ours, plain = timeline.get("ours") or [], timeline.get("baseline") or []
    kinds = sorted({k for run in ours + plain for k in run["kinds"]}, key=_order)

    def cell(runs, kind, key):
        return _f(_med([r["kinds"].get(kind, {}).get(key) for r in runs]))

    out = [f"**{timeline['title']}** (median of {len(ours)} / {len(plain)} reps; s after the command; CPU s until "
           "ready; ours / plain)", "",
           "| process | spawned | port answered | began its work | CPU s |", "|---|---|---|---|---|"]
    for kind in kinds:
        n = max([r["kinds"].get(kind, {}).get("n", 0) for r in ours + plain] or [0])
        name = kind + (f" (x{n})" if n > 1 else "")
        out.append(f"| {name} | " + " | ".join(f"{cell(ours, kind, key)} / {cell(plain, kind, key)}"
                                                 for key in ("spawned", "answered", "began", "cpu")) + " |")
    out.append("| **ready** | " + f"{_f(_med([r['ready'] for r in ours]))} / {_f(_med([r['ready'] for r in plain]))}"
               + " | | | " + f"{_f(_med([sum(k['cpu'] for k in r['kinds'].values()) for r in ours]))} / "
               f"{_f(_med([sum(k['cpu'] for k in r['kinds'].values()) for r in plain]))} |")
    labels = [l[0] for l in LINKS if any(l[0] in r["links"] for r in ours + plain)]
    chain = {l for c in timeline.get("chains", []) for l in c}
    out += ["", "| chain of waits (a link: one process, from one event to the next) | wall s | CPU s |",
            "|---|---|---|"]
    for label in labels:
        if chain and label not in chain:
            continue
        w = [_f(_med([(r["links"].get(label) or [None])[0] for r in runs])) for runs in (ours, plain)]
        c = [_f(_med([(r["links"].get(label) or [None, None])[1] for r in runs])) for runs in (ours, plain)]
        out.append(f"| {label} | {w[0]} / {w[1]} | {c[0]} / {c[1]} |")
    fl = timeline.get("floors") or []
    if fl:
        m = {key: _med([f[key] for f in fl]) for key in ("cpu", "cpu_floor", "chain", "floor", "ours", "plain")}
        out += ["", f"Floor: {_f(m['floor'])} s = the larger of the CPU that must be spent, {_f(m['cpu'])} s over "
                f"{fl[0].get('nproc', '?')} cores ({_f(m['cpu_floor'])} s), and the longest chain ({_f(m['chain'])} "
                f"s). From it: seedcore-boot {_f(m['ours'], True)} s, plain {_f(m['plain'], True)} s."]
    return out
