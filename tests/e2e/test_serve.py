"""The head's Serve step against real Ray 2.20.0 Serve, each test on its own throwaway host."""

import json
import signal
import sys

import pytest

pytestmark = pytest.mark.e2e

SERVE = "http://127.0.0.1:8000"
BOOT = [sys.executable, "-m", "seedcore_boot"]


def post(host, path, body):
    return host.http(SERVE + path, "POST", body)


def test_default_app_answers_and_redeploys_live(host):
    proc = host.boot("head")
    ready = proc.wait_line("head ready", timeout=180)
    assert "serve_ml=http://" in ready and "serve " in ready  # endpoint and the time Serve took

    status, body = host.http(SERVE + "/health")
    health = json.loads(body)
    assert status == 200 and health["status"] == "ok" and health["ray_version"] == "2.20.0"
    assert health["replica"]["app"] == "ml" and health["model"]["n_features"] == 2

    status, body = post(host, "/predict", {"features": [[1, 0], [0, 1], [2, 1]]})
    assert status == 200, body
    # weights [1, -1], bias 0: sigmoid(1), sigmoid(-1), sigmoid(1)
    assert json.loads(body) == {"predictions": [{"label": "positive", "probability": 0.731059},
                                                {"label": "negative", "probability": 0.268941},
                                                {"label": "positive", "probability": 0.731059}],
                                "model_version": "default"}
    for bad in ("not json", {"features": [[1, 2, 3]]}, {"features": []}, {"rows": [[1, 2]]},
                {"features": [["a", 1]]}):
        status, body = post(host, "/predict", bad)
        assert status == 422 and "detail" in json.loads(body), (bad, status, body)

    status, body = host.http(SERVE + "/-/routes")
    assert status == 200 and json.loads(body) == {"/": "ml"}

    # Readiness on a head that runs Serve reports each application and the proxy.
    out = host.run([*BOOT, "status", "--json"])
    assert out.returncode == 0, out.stdout
    rows = {p["name"]: p for p in json.loads(out.stdout)["probes"]}
    assert rows["serve app ml"]["ok"] and rows["serve proxy"]["detail"] == "HEALTHY" and rows["ready"]["ok"]

    supervisor = proc.inner().pid
    host.write("/tmp/v2.yaml", """
applications:
  - name: ml
    route_prefix: /
    import_path: seedcore_boot.ml_app:app
    deployments:
      - name: Classifier
        user_config: {weights: [0.5, 0.5], bias: 0.0, threshold: 0.9, labels: [low, high], version: v2}
""")
    deployed = host.run([*BOOT, "serve", "deploy", "/tmp/v2.yaml"], timeout=120)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    status, body = post(host, "/predict", {"features": [[1, 0], [4, 4]]})
    # z = 0.5 -> 0.622459 (below the 0.9 threshold); z = 4 -> 0.982014
    assert json.loads(body) == {"predictions": [{"label": "low", "probability": 0.622459},
                                                {"label": "high", "probability": 0.982014}],
                                "model_version": "v2"}
    again = host.run([*BOOT, "serve", "deploy", "/tmp/v2.yaml"], timeout=120)  # idempotent
    assert again.returncode == 0, again.stdout + again.stderr
    st = host.run([*BOOT, "serve", "status", "--json"])
    assert st.returncode == 0 and json.loads(st.stdout)["applications"]["ml"]["status"] == "RUNNING"
    assert proc.popen.poll() is None and proc.inner().pid == supervisor  # the head stayed up throughout
    assert host.http("http://127.0.0.1:8265/api/version")[0] == 200

    proc.signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    assert host.processes() == []


TWO_APPS = '''
from ray import serve


@serve.deployment(ray_actor_options={"num_cpus": 0})
class Word:
    def __init__(self, word):
        self.word = word

    async def __call__(self, request):
        return self.word


alpha = Word.bind("alpha")
beta = Word.bind("beta")
'''


def test_two_applications_from_a_module_the_test_writes(host):
    host.write("/tmp/apps/two_apps.py", TWO_APPS)
    host.write("/tmp/two.yaml", """
applications:
  - {name: first, route_prefix: /a, import_path: "two_apps:alpha"}
  - {name: second, route_prefix: /b, import_path: "two_apps:beta"}
""")
    proc = host.boot("head", "--serve-config", "/tmp/two.yaml", env={"PYTHONPATH": "/tmp/apps"})
    ready = proc.wait_line("head ready", timeout=180)
    assert "serve_first=http://127.0.0.1:8000/a" in ready and "serve_second=http://127.0.0.1:8000/b" in ready
    assert host.http(SERVE + "/a") == (200, "alpha")
    assert host.http(SERVE + "/b") == (200, "beta")
    assert json.loads(host.http(SERVE + "/-/routes")[1]) == {"/a": "first", "/b": "second"}
    proc.signal(signal.SIGTERM)
    assert proc.wait(30) == 0


def test_import_path_that_does_not_exist(host):
    host.write("/tmp/broken.yaml", """
applications:
  - {name: broken, route_prefix: /, import_path: "no_such_module_here:app"}
""")
    proc = host.boot("head", "--serve-config", "/tmp/broken.yaml")
    rc = proc.wait(180)
    assert rc == 1, proc.output_tail()
    error = proc.output.split("seedcore-boot: error:")[-1]
    assert "DEPLOY_FAILED" in error and "No module named 'no_such_module_here'" in error, proc.output_tail()
    assert "Traceback" not in error
    assert host.processes() == []


def test_serve_port_held(host):
    holder, holder_pid = host.hold_port(8000)
    proc = host.boot("head")
    assert proc.wait(30) == 1
    assert "(serve_http)" in proc.output and f"pid {holder_pid}" in proc.output, proc.output
    assert "ray |" not in proc.output  # Ray never started
    holder.kill()


def test_serve_optional_keeps_the_head_up(host):
    host.write("/tmp/broken.yaml", "applications:\n  - {name: broken, import_path: \"nope_nope:app\"}\n")
    proc = host.boot("head", "--serve-config", "/tmp/broken.yaml", "--serve-optional")
    ready = proc.wait_line("head ready", timeout=180)
    assert "serve=DOWN" in ready and "SERVE IS DOWN" in proc.output
    assert host.http("http://127.0.0.1:8265/api/version")[0] == 200
    proc.signal(signal.SIGTERM)
    assert proc.wait(30) == 0
