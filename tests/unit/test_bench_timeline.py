"""bench/timeline.py, the pure part of the start timeline: what each process is, the summary of a run, the
floor of a rep and the tables. Built from sampler documents written by hand; nothing runs or is timed."""

import pytest

from bench import report, timeline

PY = "/opt/venv/bin/python"
RAY = "/opt/venv/lib/python3.11/site-packages/ray"


def proc(titles, spawned, cpu, ports=None):
    return {"spawned": spawned, "ppid": 1, "titles": titles, "cpu": cpu, "ports": ports or {}}


def test_what_a_process_is():
    k = timeline.kind_of
    assert k([[0, f"{PY} -m seedcore_boot head"]]) == ("seedcore-boot", {})
    # a fork shows its parent's command line until it execs: the last that names a kind decides
    assert k([[0, f"{PY} -m seedcore_boot.ray.raycli start --head"], [0.1, f"{RAY}/core/src/ray/gcs/gcs_server --x"]])[0] \
        == "gcs_server"
    assert k([[0, f"{PY} {RAY}/_private/workers/setup_worker.py x"],
              [1, f"bash -c exec {PY} -m ray.util.client.server --port=10001"]])[0] == "ray_client_server"
    # a worker is what it ran, even when it was first seen as the raylet's fork
    kind, roles = k([[1, f"{RAY}/core/src/ray/raylet/raylet --x"], [1.1, f"{PY} {RAY}/_private/workers/default_worker.py"],
                     [2, "ray::IDLE"], [3, "ray::SERVE_CONTROLLER_ACTOR:ServeController.__init__"],
                     [4, "ray::ServeController.listen_for_change"]])
    assert kind == "serve controller" and roles == {"serve controller": 3}
    kind, roles = k([[2, "ray::IDLE"], [3, "ray::_start_controller"], [5, "ray::IDLE"],
                     [6, "ray::build_serve_application"]])
    assert kind == timeline.TASKS and roles == {"task _start_controller": 3, "task build_serve_application": 6}
    assert k([[1, f"{PY} {RAY}/_private/workers/default_worker.py"], [2, "ray::IDLE"]])[0] == timeline.IDLE
    assert k([[0, f"{PY} -c import sys"]])[0] == timeline.HARNESS


def test_cpu_at_a_time_is_the_last_sample_before_it():
    series = [[1.0, 0.1], [2.0, 0.5], [3.0, 0.9]]
    assert timeline.cpu_at(series, 0.5) == 0.0
    assert timeline.cpu_at(series, 2.5) == 0.5
    assert timeline.cpu_at(series, 9) == 0.9


# One made-up head start at t0 = 100: supervisor, ray start, GCS, dashboard, raylet, agent, client server, a poller.
HEAD_DOC = {"sampler_cpu": 0.2, "procs": {
    "5": proc([[100, f"{PY} -m seedcore_boot head"]], 100.0, [[100.2, 0.2], [104, 0.3]]),
    "7": proc([[100.2, f"{PY} -m seedcore_boot.ray.raycli start --head"]], 100.2, [[100.5, 0.3], [101.0, 0.5]]),
    "9": proc([[101.0, f"{RAY}/core/src/ray/gcs/gcs_server --x"]], 101.0, [[101.1, 0.05]], {"6379": 101.1}),
    "11": proc([[101.2, f"{PY} {RAY}/dashboard/dashboard.py --host=127.0.0.1"]], 101.2,
               [[102.0, 0.6], [103.0, 1.1], [104.0, 1.2]], {"44227": 102.5, "8265": 103.0}),
    "12": proc([[101.2, f"{RAY}/core/src/ray/raylet/raylet --x"]], 101.2, [[101.3, 0.05], [103.0, 0.1]],
               {"40000": 101.3}),
    "13": proc([[101.4, f"{PY} -u {RAY}/dashboard/agent.py --x"]], 101.4, [[102.0, 0.5], [103.5, 1.0]],
               {"41000": 102.9, "52365": 103.5}),
    "14": proc([[101.2, f"{PY} -m ray.util.client.server --port=10001"]], 101.2, [[103.0, 0.9]], {"10001": 103.2}),
    "20": proc([[99.0, f"{PY} -c poll"]], 99.0, [[104, 0.4]]),
    "21": dict(proc([[102.0, f"{PY} {RAY}/dashboard/dashboard.py --host=127.0.0.1"]], 102.0, [[102.1, 0.01]]),
               ppid=11),  # the dashboard's own fork of a helper program, seen before its exec
}}
PORTS = {"gcs_server": 6379, "dashboard": 8265, "dashboard_agent": 52365, "ray_client_server": 10001}


PLAIN_DOC = {"procs": {pid: p for pid, p in HEAD_DOC["procs"].items() if pid != "5"}}  # no supervisor


def head_run(doc=HEAD_DOC, ready=103.6):
    return timeline.summarize(doc, 100.0, ready, 101.4, main_ports=PORTS, nproc=2)


def test_a_run_in_seconds_from_the_command_and_cpu_until_ready():
    run = head_run()
    assert run["ready"] == pytest.approx(3.6) and run["marker"] == pytest.approx(1.4)
    assert list(run["kinds"]) == ["seedcore-boot", "ray start", "gcs_server", "raylet", "dashboard",
                                  "dashboard_agent", "ray_client_server"]  # the poller is not part of it
    dash = run["kinds"]["dashboard"]
    assert dash["spawned"] == pytest.approx(1.2) and dash["answered"] == pytest.approx(3.0)  # its main port
    assert dash["cpu"] == pytest.approx(1.1)  # until ready, not after
    assert run["kinds"]["raylet"]["answered"] == pytest.approx(1.3)  # no main port: its first
    links = run["links"]
    assert links["ray start: Python, Ray's CLI, until gcs_server"] == pytest.approx([0.8, 0.5])
    assert links["dashboard until it answers"] == pytest.approx([1.9, 1.1])
    assert links["raylet until it spawns the agent"] == pytest.approx([0.3, 0.05])
    assert links["dashboard_agent until it answers"] == pytest.approx([2.1, 1.0])
    assert "serve proxy: until port 8000 answers" not in links  # no such events in a head without Serve


def test_the_floor_is_the_larger_of_the_cpu_over_the_cores_and_the_longest_chain():
    ours = head_run()
    plain = head_run(PLAIN_DOC, ready=104.5)
    plain["kinds"]["dashboard"] = dict(plain["kinds"]["dashboard"], cpu=1.5)  # plain spent more: the lesser counts
    f = timeline.floor(ours, plain, timeline.CHAINS["head"], 2)
    # required CPU: ray start 0.5 + gcs 0.05 + raylet 0.1 + dashboard 1.1 + agent 1.0 + client 0.9 (not ours 0.2)
    assert f["cpu"] == pytest.approx(3.65) and f["cpu_floor"] == pytest.approx(1.825)
    # chain: no supervisor (plain's 0) + CLI 0.5 + GCS 0.05, then the longest branch: the dashboard's 1.1
    assert f["chain"] == pytest.approx(1.65)
    assert f["floor"] == pytest.approx(1.825)
    assert f["ours"] == pytest.approx(3.6 - 1.825) and f["plain"] == pytest.approx(4.5 - 1.825)
    # with a chain longer than the CPU over the cores, the chain is the floor
    assert timeline.floor(ours, plain, timeline.CHAINS["head"], 8)["floor"] == pytest.approx(1.65)


def test_a_link_missing_on_one_side_counts_the_other():
    ours = head_run()
    plain = dict(head_run(), links={})
    assert timeline.floor(ours, plain, timeline.CHAINS["head"], 2)["chain"] == pytest.approx(1.85)


def test_a_serve_chain_link_starts_where_the_one_before_it_ended():
    doc = {"procs": dict(HEAD_DOC["procs"], **{
        # a worker the raylet started before the dashboard answered (at 103.0): its start ran beside the chain
        "30": proc([[102.0, f"{PY} {RAY}/_private/workers/default_worker.py"], [102.6, "ray::IDLE"],
                    [103.4, "ray::_start_controller"], [104.0, "ray::IDLE"]], 102.0,
                   [[102.5, 0.4], [103.0, 0.6], [103.4, 0.9]]),
        "31": proc([[103.5, "ray::SERVE_CONTROLLER_ACTOR:ServeController.__init__"]], 103.5, [[104.2, 0.7]]),
        "32": proc([[104.3, "ray::SERVE_PROXY_ACTOR-x:ProxyActor.__init__"]], 104.3, [[104.8, 0.5]],
                   {"8000": 104.9}),
        "33": proc([[105.0, "ray::SERVE_REPLICA::a:ServeReplica:a:A.__init__"]], 105.0, [[105.5, 0.4]]),
    })}
    ports = dict(PORTS, **{"serve proxy": 8000})
    run = timeline.summarize(doc, 100.0, 105.6, first_200=105.6, main_ports=ports, nproc=2)
    links = run["links"]
    assert links["dashboard: the deploy, until the raylet spawns a worker"] == [0.0, 0.0]  # spawned before
    assert links["that worker: its start, then Serve's start task"] == pytest.approx([0.4, 0.3])  # from 103.0
    assert links["serve controller: a new worker, imports, __init__"] == pytest.approx([0.1, 0.0])
    assert links["serve proxy: until port 8000 answers"] == pytest.approx([1.4, 0.5])
    assert links["serve replica: until the first 200"] == pytest.approx([0.7, 0.4])
    assert run["kinds"]["serve controller"]["began"] == pytest.approx(3.5)
    assert run["kinds"][timeline.TASKS]["began"] is None  # its tasks are events, not one piece of work


def test_the_tables_and_the_readme_block():
    ours, plain = head_run(), head_run(PLAIN_DOC, ready=104.5)
    tl = {"name": "head", "title": "Start timeline: a head", "chains": timeline.CHAINS["head"],
          "ours": [ours], "baseline": [plain], "floors": [timeline.floor(ours, plain, timeline.CHAINS["head"], 2)]}
    lines = timeline.tables(tl)
    assert lines[0].startswith("**Start timeline: a head** (median of 1 / 1 reps")
    assert "| seedcore-boot | 0.00 / - | - / - | - / - | 0.20 / - |" in lines
    assert "| dashboard | 1.20 / 1.20 | 3.00 / 3.00 | - / - | 1.10 / 1.20 |" in lines
    assert "| **ready** | 3.60 / 4.50 | | | 3.85 / 3.75 |" in lines  # every process's CPU, ours with the supervisor
    assert "| dashboard until it answers | 1.90 / 1.90 | 1.10 / 1.10 |" in lines
    assert not any("serve replica" in l for l in lines)
    assert lines[-1] == ("Floor: 1.82 s = the larger of the CPU that must be spent, 3.65 s over 2 cores (1.82 s), and "
                         "the longest chain (1.65 s). From it: seedcore-boot +1.77 s, plain +2.67 s.")
    table = report.table({"metrics": [], "timelines": [tl]})
    assert "\n".join(lines) in table


def test_the_collector_keeps_timelines():
    c = report.Collector()
    c.timeline("head", "t", [["a"]])
    c.add_run("head", "ours", {"ready": 1})
    c.add_floor("head", {"floor": 0.5})
    assert c.timelines() == [{"name": "head", "title": "t", "chains": [["a"]], "ours": [{"ready": 1}],
                              "baseline": [], "floors": [{"floor": 0.5}]}]
