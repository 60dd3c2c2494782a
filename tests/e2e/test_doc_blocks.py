"""The command blocks of README.md and docs/*.md that run on one machine, typed as written (tests/docblocks.py
reads them from the pages; each block's marker names its test here), with the results the pages say.

Ray runs on throwaway hosts (tests/nshost.py); what needs the network (pip) or the Docker engine runs in the
root namespace, the latter under the engine's lock as every container test does.

README's test command (`scripts/test`) runs the whole suite, this test included, so running it as written
from inside the suite would recurse. Its test runs the very same entry point, install part and all, with one
unit module as pytest's arguments (scripts/test passes its arguments to pytest), and the unit test
tests/unit/test_doc_blocks.py checks that README's command is exactly what .ci/run executes.
"""

import json
import os
import re
import signal
import stat
import subprocess
import sys

import pytest

from tests import docblocks
from tests.dockerhosts import engine_or_skip
from tests.nshost import base_env

pytestmark = pytest.mark.e2e

REPO = docblocks.REPO
# A newcomer's Python environment, kept between runs (like the stand-in images) so that `pip install .` is the
# seconds of building seedcore-boot, not the minutes of downloading Ray. Outside /tmp: hosts hide it.
VENV = os.environ.get("SEEDCORE_NEWCOMER_VENV", "/opt/seedcore-boot-ci/newcomer-venv")
# What running.md shows for the sample app's /predict (its comment line under the curl).
PREDICTIONS = [{"label": "positive", "probability": 0.731059}, {"label": "negative", "probability": 0.268941}]


def in_venv(extra=None):
    env = dict(os.environ, PATH=f"{VENV}/bin:{os.environ['PATH']}", VIRTUAL_ENV=VENV, RAY_USAGE_STATS_ENABLED="0")
    env.update(extra or {})
    return env


def make_venv():
    if not os.path.exists(f"{VENV}/bin/python"):
        subprocess.run([sys.executable, "-m", "venv", VENV], check=True)


def typed_here(line, env, cwd=REPO, timeout=1800):
    """`line` typed in a terminal on this machine: bash, SIGINT as a terminal leaves it (a run started in the
    background by a non-interactive shell ignores it, and ignored signals are inherited)."""
    return subprocess.run(["bash", "-c", line], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
                          preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def shell(host, line, env=None, timeout=120):
    return host.run(["bash", "-c", line], env=env, timeout=timeout)


def until_ready(proc):
    return proc.wait_line("head ready in", timeout=240)


def name_hosts(host, names):
    """/etc/hosts of `host` (its own mount namespace) naming these addresses, as a LAN's DNS or compose would."""
    host.write("/tmp/hosts", "127.0.0.1 localhost\n" + "".join(f"{ip} {name}\n" for name, ip in names.items()))
    assert host.run(["mount", "--bind", "/tmp/hosts", "/etc/hosts"]).returncode == 0


def test_readme_install_and_head(host):
    """`pip install . && seedcore-boot head`, as typed in an activated venv: pip in the machine's own network
    namespace (it needs PyPI, which no throwaway host reaches), the head on a throwaway host."""
    (line,) = docblocks.commands(docblocks.block("README.md", "test_readme_install_and_head"))
    install, _, head = (part.strip() for part in line.split("#")[0].partition("&&"))
    assert (install, head) == ("pip install .", "seedcore-boot head"), line
    make_venv()
    out = typed_here(install, in_venv())
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    assert os.path.exists(f"{VENV}/bin/seedcore-boot")
    proc = host.spawn(["bash", "-c", head], env={"PATH": f"{VENV}/bin:{base_env()['PATH']}"})
    try:
        ready = until_ready(proc)
        assert "http://127.0.0.1:8000" in proc.output or "8000" in ready, proc.output_tail()
        status, body = host.http("http://127.0.0.1:8000/health")
        assert status == 200 and json.loads(body)["status"] == "ok", body
        proc.signal(signal.SIGINT)  # Ctrl-C in the foreground
        assert proc.wait(60) == 0, proc.output_tail()
        assert "Traceback" not in proc.output, proc.output_tail()
    finally:
        proc.kill()


def test_readme_the_head(host):
    """README's "The head" block, its running-head block and running.md's curls, on one head: each line typed
    as written, in the order a user types them (the foreground head first; the dry run and `config show`
    once it stopped, as `seedcore-boot stop` from the second block leaves it)."""
    head_block, running_block = docblocks.marked("README.md", "test_readme_the_head")
    head_lines, running = docblocks.commands(head_block), docblocks.commands(running_block)
    curls = docblocks.block("docs/running.md", "test_readme_the_head")
    assert [l.split("#")[0].strip() for l in head_lines] == [
        "seedcore-boot head", "seedcore-boot head --dry-run", "seedcore-boot config show"], head_lines
    proc = host.spawn(["bash", "-c", head_lines[0]])
    try:
        until_ready(proc)
        predict_shown = json.loads(curls[2].lstrip("# ").split(",...")[0] + "}")["predictions"]
        assert predict_shown == PREDICTIONS
        for line in docblocks.commands(curls) + running:
            out = shell(host, line)
            assert out.returncode == 0, f"{line}\n{out.stdout}\n{out.stderr}"
            if "/health" in line:
                assert json.loads(out.stdout)["status"] == "ok"
            elif "/predict" in line:
                assert json.loads(out.stdout)["predictions"] == PREDICTIONS, out.stdout
            elif "seedcore-boot status" in line:
                assert ": healthy" in out.stdout.splitlines()[0], out.stdout
        assert proc.wait(60) == 0, proc.output_tail()  # the last line was `seedcore-boot stop`
    finally:
        proc.kill()
    for line in head_lines[1:]:
        out = shell(host, line)
        assert out.returncode == 0 and "Traceback" not in out.stderr, f"{line}\n{out.stdout}\n{out.stderr}"
        if "--dry-run" in line:
            assert out.stdout.startswith("# ray start argv (head)"), out.stdout
            assert " start --head --block " in out.stdout, out.stdout
        else:
            assert "gcs_port" in out.stdout and "6379" in out.stdout, out.stdout


def test_security_tls_init(tmp_path):
    """docs/security.md: `seedcore-boot tls init ./tls` makes the CA, its key mode 600."""
    (line,) = docblocks.commands(docblocks.block("docs/security.md", "test_security_tls_init"))
    out = typed_here(line, base_env(), cwd=tmp_path, timeout=60)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "tls" / "ca.crt").read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert stat.S_IMODE(os.stat(tmp_path / "tls" / "ca.key").st_mode) == 0o600


def test_readme_test_command():
    """README's test command through the very same entry point: its install part (packages, a venv with the
    test extra, the engine, the stand-ins), then pytest on one unit module instead of the whole suite."""
    (line,) = docblocks.commands(docblocks.block("README.md", "test_readme_test_command"))
    assert line == "scripts/test"
    engine_or_skip()
    make_venv()
    out = typed_here(f"{line} -q tests/unit/test_doc_blocks.py", dict(os.environ, SEEDCORE_CI_VENV=VENV))
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert " passed" in out.stdout and "failed" not in out.stdout, out.stdout[-2000:]
    assert os.path.exists(f"{VENV}/bin/pytest")  # the test extra went in


def test_readme_partial_test_commands():
    """The partial commands for people working on the code, each typed as written plus `--collect-only`:
    the suite itself runs these modules in full, so here a wrong path, a missing dependency or an import
    error fails; the third goes through scripts/test, install part included, as README's test command does."""
    lines = docblocks.commands(docblocks.block("README.md", "test_readme_partial_test_commands"))
    assert [l.split("#")[0].split()[:3] for l in lines] == [
        ["python", "-m", "pytest"], ["python", "-m", "pytest"], ["scripts/test", "tests/e2e/test_docker.py"]]
    engine_or_skip()  # scripts/test needs root and installs the rest; the engine up, it leaves it as it is
    make_venv()
    env = dict(os.environ, PATH=f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}", SEEDCORE_CI_VENV=VENV)
    for line in lines:
        out = typed_here(line.split("#")[0] + " --collect-only", env)
        assert out.returncode == 0 and re.search(r"\d+ tests? collected", out.stdout), \
            f"{line}\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}"


def test_workers_join_by_the_heads_name(lan):
    """docs/fault-tolerance.md's two lines, and the worker line of README and running.md, on one head: Redis on
    C, named `redis` (the page's `...` is its password); the head on A, named `ray-head` on B as compose's
    network names it; on B the plain worker first, stopped, then the fault-tolerance page's. A has a default
    route, as a machine has (Ray's address detection asks the route to the internet; nothing is sent)."""
    head_line, ft_worker = docblocks.commands(docblocks.block("docs/fault-tolerance.md",
                                                              "test_workers_join_by_the_heads_name"))
    readme = docblocks.commands(docblocks.block("README.md", "test_workers_join_by_the_heads_name"))
    running = docblocks.commands(docblocks.block("docs/running.md", "test_workers_join_by_the_heads_name"))
    assert readme == running and len(readme) == 1, (readme, running)
    assert head_line.startswith("REDIS_PASSWORD=... seedcore-boot head --redis-address redis:6379"), head_line
    a, b, c = lan(1), lan(2), lan(3)
    redis = c.spawn(["redis-server", "--port", "6379", "--requirepass", "hunter2", "--save", "", "--appendonly",
                     "no", "--protected-mode", "no"])
    redis.wait_line("Ready to accept connections", timeout=30)
    name_hosts(a, {"redis": "10.200.0.3"})
    name_hosts(b, {"ray-head": "10.200.0.1"})
    assert a.run(["ip", "route", "add", "default", "via", "10.200.0.254"]).returncode == 0
    head = a.spawn(["bash", "-c", head_line.replace("REDIS_PASSWORD=...", "REDIS_PASSWORD=hunter2", 1)])
    worker = None
    try:
        until_ready(head)
        assert "no earlier cluster in Redis redis:6379" in head.output, head.output_tail()
        assert "hunter2" not in head.output
        for line in (readme[0], ft_worker):
            worker = b.spawn(["bash", "-c", line])
            worker.wait_line("worker ready", timeout=240)
            assert "10.200.0.2" in worker.output, worker.output_tail()  # the address it advertises
            worker.signal(signal.SIGTERM)
            assert worker.wait(120) == 0, worker.output_tail()
        head.signal(signal.SIGTERM)
        assert head.wait(120) == 0, head.output_tail()
    finally:
        for proc in (worker, head, redis):
            if proc:
                proc.kill()


def test_security_tls_head_then_a_driver(host, tmp_path):
    """docs/security.md: the head with TLS from the CA's files at /run/secrets (a tmpfs of the host's own),
    then, as the page says for a driver on a node, `eval "$(seedcore-boot tls env)"` before `ray status` and a
    driver; without it Ray refuses."""
    (line,) = docblocks.commands(docblocks.block("docs/security.md", "test_security_tls_head_then_a_driver"))
    out = subprocess.run([sys.executable, "-m", "seedcore_boot", "tls", "init", str(tmp_path / "ca")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert host.run(["mount", "-t", "tmpfs", "tmpfs", "/run"]).returncode == 0
    for name in ("ca.crt", "ca.key"):
        host.write(f"/run/secrets/{name}", (tmp_path / "ca" / name).read_text())
    os.chmod(host.path("/run/secrets/ca.key"), 0o600)
    proc = host.spawn(["bash", "-c", line])
    try:
        until_ready(proc)
        driver = 'python -c "import ray; ray.init(); print(ray.cluster_resources()[\'CPU\'])"'
        for command in ("ray status", driver):
            out = shell(host, f'eval "$(seedcore-boot tls env)" && {command}', timeout=180)
            assert out.returncode == 0, f"{command}\n{out.stdout}\n{out.stderr[-3000:]}"
        plain = shell(host, "ray status", timeout=180)
        assert plain.returncode != 0, plain.stdout
        proc.signal(signal.SIGTERM)
        assert proc.wait(60) == 0, proc.output_tail()
    finally:
        proc.kill()
