"""The pure part of the benchmarks: statistics, targets, the JSON document and the table of docs/benchmarks.md.

Nothing here starts a process or reads the clock, so tests/unit/test_bench_report.py can pin it.

A metric in the JSON:

    {"id": "head.marker", "label": "...", "unit": "s",
     "ours": [samples], "ours_label": "seedcore-boot head --no-serve",
     "baseline": [samples], "baseline_label": "ray start --head --block",   (both optional)
     "target": {"kind": "ratio_max" | "max" | "diff_max" | "zero", "value": 0.6}   (optional)
     "note": "..."}                                                                   (optional)

`ratio_max`: median(ours) / median(baseline) <= value; `diff_max`: median(ours) - median(baseline) <= value;
`max`: median(ours) <= value; `zero`: every sample of ours is 0 (orphans).
"""

import statistics

from . import timeline as _timeline

BEGIN = "<!-- bench:begin -->"
END = "<!-- bench:end -->"
SECTION = "## Performance"  # of docs/benchmarks.md


def summary(samples):
    """{"n", "min", "median", "max"} of the numbers in `samples` (None entries are failed reps, skipped)."""
    xs = [float(x) for x in samples or () if x is not None]
    if not xs:
        return {"n": 0, "min": None, "median": None, "max": None}
    return {"n": len(xs), "min": min(xs), "median": statistics.median(xs), "max": max(xs)}


def ratio(ours, baseline):
    """median(ours) / median(baseline), or None when either side has no samples or the baseline is 0."""
    a, b = summary(ours)["median"], summary(baseline)["median"]
    if a is None or b is None or b == 0:
        return None
    return a / b


def evaluate(metric):
    """(met, what): met is True / False, or None when there is no target or too little data."""
    target = metric.get("target")
    if not target:
        return None, ""
    kind, value = target["kind"], target.get("value")
    ours = summary(metric.get("ours"))["median"]
    base = summary(metric.get("baseline"))["median"]
    unit = metric.get("unit", "")
    if kind == "ratio_max":
        r = ratio(metric.get("ours"), metric.get("baseline"))
        return (None if r is None else r <= value), f"ratio <= {value:g}"
    if kind == "diff_max":
        if ours is None or base is None:
            return None, f"<= baseline + {value:g} {unit}".rstrip()
        return ours - base <= value, f"<= baseline + {value:g} {unit}".rstrip()
    if kind == "max":
        return (None if ours is None else ours <= value), f"<= {value:g} {unit}".rstrip()
    if kind == "zero":
        xs = [x for x in metric.get("ours") or () if x is not None]
        return (all(x == 0 for x in xs) if xs else None), "0"
    raise ValueError(f"unknown target kind {kind!r}")


def finish(metric):
    """The metric with its computed fields added (summaries, ratio, target verdict); a new dict."""
    out = dict(metric)
    out["ours_summary"] = summary(metric.get("ours"))
    if "baseline" in metric:
        out["baseline_summary"] = summary(metric.get("baseline"))
        # a ratio of counts (orphans, retries) says nothing
        out["ratio"] = None if metric.get("unit") == "count" else ratio(metric.get("ours"), metric.get("baseline"))
    met, what = evaluate(metric)
    if metric.get("target"):
        out["target_met"], out["target_text"] = met, what
    return out


def fmt(x, unit):
    if x is None:
        return "-"
    if unit == "s":
        return f"{x:.2f} s"
    if unit == "ms":
        return f"{x:.0f} ms" if x >= 10 or x == 0 else f"{x:.1f} ms"
    if unit == "MB":
        return f"{x:.1f} MB"
    if unit == "count":
        return f"{x:g}"
    if unit == "%":
        return f"{x:.0f} %"
    return f"{x:g} {unit}".rstrip()


def cell(samples, unit):
    """median (min-max) of the samples, or "-"."""
    s = summary(samples)
    if s["n"] == 0:
        return "-"
    lo, hi = fmt(s["min"], unit), fmt(s["max"], unit)
    if s["n"] == 1 or lo == hi:
        return fmt(s["median"], unit)
    lo = lo.rsplit(" ", 1)[0] if unit in ("s", "ms", "MB", "%") else lo  # "2.31-2.40 s", unit once
    return f"{fmt(s['median'], unit)} ({lo}-{hi})"


def print_lines(metric):
    """Console lines for one metric: min / median / max of each side, the ratio, the target."""
    m = finish(metric)
    unit = m.get("unit", "")
    lines = []
    for side in ("ours", "baseline"):
        if side not in m:
            continue
        s = m[f"{side}_summary"]
        label = m.get(f"{side}_label", side)
        if s["n"] == 0 and label == "-":
            continue  # a side this metric does not have (plain Ray's `ray stop`: no seedcore-boot side)
        if s["n"] == 0:
            lines.append(f"  {label}: no samples")
        else:
            lines.append(f"  {label}: min {fmt(s['min'], unit)}  median {fmt(s['median'], unit)}  "
                         f"max {fmt(s['max'], unit)}  (n={s['n']})")
    tail = []
    if m.get("ratio") is not None:
        tail.append(f"ratio {m['ratio']:.2f}")
    if "target_met" in m:
        verdict = {True: "met", False: "MISSED", None: "no data"}[m["target_met"]]
        tail.append(f"target {m['target_text']}: {verdict}")
    return [f"{m['label']}" + (f"  [{', '.join(tail)}]" if tail else "")] + lines


def _esc(text):
    return str(text).replace("|", "\\|")


def _reps(n):
    return f"{n} rep" + ("" if n == 1 else "s")


def _minutes(seconds):
    return f"{seconds / 60:.0f} min" if seconds >= 600 else f"{seconds / 60:.1f} min"


def table(doc):
    """The Markdown block that goes between the page's markers."""
    mach = doc.get("machine", {})
    mem = mach.get("memory_gib")
    machine = ", ".join(x for x in (
        f"{mach['nproc']} CPUs" if mach.get("nproc") else "",
        f"{mem:.1f} GiB memory" if mem else "",
        f"Linux {mach['kernel']}" if mach.get("kernel") else "",
        f"Python {mach['python']}" if mach.get("python") else "",
        f"Ray {mach['ray']}" if mach.get("ray") else "") if x)
    load = mach.get("load_before"), mach.get("load_after")
    if all(load):
        machine += f"; load average {load[0][0]:.1f} before, {load[1][0]:.1f} after"
    dur = doc.get("duration_s")
    head = [f"Measured {doc.get('date', '?')} with `{doc.get('command', 'python -m bench')}`"
            + (f" ({_reps(doc.get('reps'))} each, {_minutes(dur)} in all)" if dur else "")
            + f" on {machine or 'an unknown machine'}.",
            "Each cell: median (min-max); ratio = median of seedcore-boot / median of the baseline.",
            "",
            "| measure | seedcore-boot | baseline (plain Ray) | ratio | target | met |",
            "|---|---|---|---|---|---|"]
    rows = []
    for raw in doc.get("metrics", []):
        m = finish(raw)
        unit = m.get("unit", "")
        ours = cell(m.get("ours"), unit)
        base = "-"
        if "baseline" in m:
            base = f"{cell(m.get('baseline'), unit)}: {m.get('baseline_label', '')}".rstrip(": ")
        r = "-" if m.get("ratio") is None else f"{m['ratio']:.2f}"
        target = m.get("target_text", "-") or "-"
        met = {True: "yes", False: "**no**", None: "no data"}.get(m.get("target_met"), "-") \
            if "target_met" in m else "-"
        label = m["label"] + (f" ({m['note']})" if m.get("note") else "")
        rows.append(f"| {_esc(label)} | {_esc(ours)} | {_esc(base)} | {r} | {_esc(target)} | {met} |")
    for tl in doc.get("timelines", []):
        rows += [""] + _timeline.tables(tl)
    return "\n".join(head + rows)


def update_page(text, doc):
    """The page's text with the block between the markers replaced by table(doc).

    The markers must sit inside the "## Performance" section; when they are missing they are added at the
    end of that section. Nothing outside the markers changes.
    """
    start = text.find("\n" + SECTION + "\n")
    if start < 0:
        raise ValueError(f"the page has no {SECTION!r} section")
    start += 1
    nxt = text.find("\n## ", start + len(SECTION))
    end_sec = len(text) if nxt < 0 else nxt + 1
    section = text[start:end_sec]
    block = f"{BEGIN}\n{table(doc)}\n{END}"
    if BEGIN in section and END in section:
        b, e = section.index(BEGIN), section.index(END) + len(END)
        if e < b:
            raise ValueError("the page: bench:end comes before bench:begin")
        section = section[:b] + block + section[e:]
    elif BEGIN in section or END in section or BEGIN in text or END in text:
        raise ValueError("the page: the bench markers must both be inside the Performance section")
    else:
        body = section.rstrip("\n")
        section = f"{body}\n\n{block}\n" + ("\n" if nxt >= 0 else "")
    return text[:start] + section + text[end_sec:]


class Collector:
    """Metrics declared up front, samples added rep by rep; metrics() gives the JSON list in order."""

    def __init__(self):
        self._metrics = {}
        self._timelines = {}

    def declare(self, mid, label, unit, ours_label, baseline_label=None, target=None, note=None):
        m = {"id": mid, "label": label, "unit": unit, "ours_label": ours_label, "ours": []}
        if baseline_label is not None:
            m["baseline_label"], m["baseline"] = baseline_label, []
        if target:
            m["target"] = target
        if note:
            m["note"] = note
        self._metrics[mid] = m
        return m

    def add(self, mid, side, value):
        self._metrics[mid][side].append(value)

    def get(self, mid):
        return self._metrics[mid]

    def metrics(self):
        return [finish(m) for m in self._metrics.values()]

    def timeline(self, name, title, chains):
        """A start timeline (bench/timeline.py): runs of each side and the floor of each rep, added later."""
        self._timelines[name] = {"name": name, "title": title, "chains": chains, "ours": [], "baseline": [],
                                 "floors": []}

    def add_run(self, name, side, run):
        self._timelines[name][side].append(run)

    def add_floor(self, name, floor):
        self._timelines[name]["floors"].append(floor)

    def timelines(self):
        return list(self._timelines.values())
