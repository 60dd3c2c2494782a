"""bench/report.py, the pure part of `python -m bench`: statistics, targets and the table of docs/benchmarks.md.
No benchmark runs here, and nothing is timed."""

import pytest

from bench import report

DOC = {
    "date": "2026-12-01 21:00 UTC", "command": "python -m bench --reps 3", "reps": 3, "duration_s": 600,
    "machine": {"nproc": 2, "memory_gib": 23.6, "kernel": "6.1.0", "python": "3.11.2", "ray": "2.20.0",
                "load_before": [0.52, 0.3, 0.1], "load_after": [1.24, 1.0, 0.5]},
    "metrics": [
        {"id": "head.marker", "label": "head: to the marker", "unit": "s", "ours_label": "seedcore-boot",
         "ours": [2.0, 2.5, 2.2], "baseline_label": "ray start", "baseline": [4.0, 3.0, 5.0],
         "target": {"kind": "ratio_max", "value": 0.6}},
        {"id": "rss", "label": "supervisor RSS", "unit": "MB", "ours_label": "seedcore-boot", "ours": [70.0],
         "target": {"kind": "max", "value": 60}},
        {"id": "stop", "label": "stop | head", "unit": "s", "ours_label": "x", "ours": [1.9, None],
         "baseline_label": "plain", "baseline": [1.8], "target": {"kind": "diff_max", "value": 0.2}},
        {"id": "orphans", "label": "orphans", "unit": "count", "ours_label": "x", "ours": [0, 0],
         "target": {"kind": "zero"}},
        {"id": "none", "label": "no data", "unit": "ms", "ours_label": "x", "ours": [],
         "target": {"kind": "max", "value": 50}},
    ],
}

README = """# x

intro

## Performance

How to run.

<!-- bench:begin -->
old table
<!-- bench:end -->

After the table.

## Development

dev text
"""


def test_summary_skips_failed_reps_and_takes_the_median():
    assert report.summary([3, None, 1, 2]) == {"n": 3, "min": 1.0, "median": 2.0, "max": 3.0}
    assert report.summary([1, 2, 3, 4])["median"] == 2.5
    assert report.summary([]) == {"n": 0, "min": None, "median": None, "max": None}
    assert report.summary([None])["n"] == 0


def test_ratio_is_of_the_medians():
    assert report.ratio([2.0, 2.5, 2.2], [4.0, 3.0, 5.0]) == pytest.approx(2.2 / 4.0)
    assert report.ratio([1], []) is None
    assert report.ratio([1], [0]) is None


def test_targets():
    m = {x["id"]: x for x in DOC["metrics"]}
    assert report.evaluate(m["head.marker"]) == (True, "ratio <= 0.6")
    assert report.evaluate(m["rss"]) == (False, "<= 60 MB")
    assert report.evaluate(m["stop"])[0] is True  # 1.9 <= 1.8 + 0.2
    assert report.evaluate(dict(m["stop"], ours=[2.1]))[0] is False
    assert report.evaluate(m["orphans"]) == (True, "0")
    assert report.evaluate(dict(m["orphans"], ours=[0, 1]))[0] is False
    assert report.evaluate(m["none"])[0] is None
    assert report.evaluate({"ours": [1]}) == (None, "")
    with pytest.raises(ValueError):
        report.evaluate({"ours": [1], "target": {"kind": "nope"}})


def test_collector_keeps_order_and_computes():
    c = report.Collector()
    c.declare("b", "B", "s", "ours", "plain", {"kind": "ratio_max", "value": 0.5})
    c.declare("a", "A", "ms", "ours")
    c.add("b", "ours", 1.0)
    c.add("b", "baseline", 4.0)
    c.add("a", "ours", 3.0)
    got = c.metrics()
    assert [m["id"] for m in got] == ["b", "a"]
    assert got[0]["ratio"] == 0.25 and got[0]["target_met"] is True
    assert got[1]["ours_summary"]["median"] == 3.0 and "ratio" not in got[1]
    c.declare("n", "N", "count", "ours", "plain")
    c.add("n", "ours", 0)
    c.add("n", "baseline", 1)
    assert c.metrics()[2]["ratio"] is None  # no ratio of counts


def test_cells_and_console_lines():
    assert report.cell([2.0, 2.5, 2.2], "s") == "2.20 s (2.00-2.50 s)"
    assert report.cell([70.0], "MB") == "70.0 MB"
    assert report.cell([], "s") == "-"
    assert report.cell([0, 0], "count") == "0"
    assert report.cell([28.61, 28.64], "MB") == "28.6 MB"  # equal once rounded: no range
    assert report.cell([97.2, 99.1], "%") == "98 % (97-99 %)"
    lines = report.print_lines(DOC["metrics"][0])
    assert "ratio 0.55" in lines[0] and "target ratio <= 0.6: met" in lines[0]
    assert "min 2.00 s  median 2.20 s  max 2.50 s" in lines[1]


def test_table_has_machine_command_targets_and_verdicts():
    t = report.table(DOC)
    assert "2 CPUs, 23.6 GiB memory, Linux 6.1.0" in t and "load average 0.5 before, 1.2 after" in t
    assert "2026-12-01 21:00 UTC" in t and "`python -m bench --reps 3`" in t and "10 min in all" in t
    rows = {r.split(" | ")[0].lstrip("| "): r for r in t.splitlines() if r.startswith("| ") and "---" not in r}
    assert "| 0.55 | ratio <= 0.6 | yes |" in rows["head: to the marker"]
    assert "2.20 s (2.00-2.50 s)" in rows["head: to the marker"] and "4.00 s (3.00-5.00 s): ray start" in \
        rows["head: to the marker"]
    assert rows["supervisor RSS"].endswith("| <= 60 MB | **no** |")
    assert "stop \\| head" in t  # a | in a label does not break the table
    assert rows["no data"].endswith("| no data |")


def test_readme_replaces_only_between_the_markers():
    new = report.update_page(README, DOC)
    before, rest = new.split(report.BEGIN)
    block, after = rest.split(report.END)
    assert before == README.split(report.BEGIN)[0]
    assert after == README.split(report.END)[1]
    assert "old table" not in new and "| head: to the marker |" in block
    assert report.update_page(new, DOC) == new  # idempotent


def test_readme_markers_added_at_the_end_of_the_section_when_missing():
    plain = README.replace("<!-- bench:begin -->\nold table\n<!-- bench:end -->\n\n", "")
    new = report.update_page(plain, DOC)
    sec = new.split("## Performance")[1].split("## Development")[0]
    assert report.BEGIN in sec and report.END in sec and sec.index("After the table.") < sec.index(report.BEGIN)
    assert new.endswith("## Development\n\ndev text\n")
    assert report.update_page(new, DOC) == new


def test_readme_without_the_section_or_with_a_stray_marker_is_refused():
    with pytest.raises(ValueError):
        report.update_page("# x\n\n## Other\n", DOC)
    with pytest.raises(ValueError):
        report.update_page(README.replace("<!-- bench:end -->\n", ""), DOC)
