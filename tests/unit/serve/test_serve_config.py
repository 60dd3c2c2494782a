import os

import pytest

from seedcore_boot.config.settings import resolve
from seedcore_boot.errors import BootError
from seedcore_boot.serve import config as serve, deploy
from tests import REPO


def load(tmp_path, text):
    path = tmp_path / "serve.yaml"
    path.write_text(text)
    return serve.load(str(path))


def error_of(tmp_path, text):
    with pytest.raises(BootError) as err:
        load(tmp_path, text)
    assert err.value.exit_code == 2
    return str(err.value)


def test_yaml_syntax_error_names_the_line(tmp_path):
    msg = error_of(tmp_path, "applications:\n  - name: a\n    import_path: [x\n  - name: b\n")
    assert "line 4" in msg and "YAML error" in msg


def test_missing_import_path_names_the_line(tmp_path):
    msg = error_of(tmp_path, "proxy_location: HeadOnly\napplications:\n  - name: a\n    route_prefix: /a\n")
    assert "line 3" in msg and "no import_path" in msg


def test_duplicate_names_and_routes(tmp_path):
    assert "duplicate application name 'a'" in error_of(
        tmp_path, "applications:\n- {name: a, route_prefix: /x, import_path: m:a}\n"
                  "- {name: a, route_prefix: /y, import_path: m:b}\n")
    msg = error_of(tmp_path, "applications:\n- {name: a, route_prefix: /x, import_path: m:a}\n"
                             "- {name: b, route_prefix: /x, import_path: m:b}\n")
    assert "duplicate route_prefix '/x'" in msg and "line 3" in msg


def test_unknown_keys_suggest_the_right_one(tmp_path):
    assert "did you mean 'import_path'" in error_of(tmp_path, "applications:\n- {name: a, imprt_path: m:a}\n")
    assert "did you mean 'applications'" in error_of(tmp_path, "aplications: []\n")


def test_empty_or_wrong_shape(tmp_path):
    assert "non-empty list" in error_of(tmp_path, "applications: []\n")
    assert "mapping" in error_of(tmp_path, "- just a list\n")
    assert "must start with /" in error_of(tmp_path, "applications:\n- {route_prefix: x, import_path: m:a}\n")


def test_default_config_is_our_sample_and_valid():
    config = serve.for_settings(resolve({}, {}).settings)
    assert config["applications"][0]["import_path"] == serve.OUR_APP
    assert serve.health_routes(config) == {"ml": "/health"}
    assert serve.for_settings(resolve({"serve": False}, {}).settings) is None


def test_serve_app_shorthand_and_health_routes():
    config = serve.for_settings(resolve({"serve_app": "pkg.mod:app"}, {}).settings)
    assert config["applications"] == [{"name": "default", "route_prefix": "/", "import_path": "pkg.mod:app"}]
    assert serve.health_routes(config) == {"default": "/-/healthz"}
    assert serve.health_routes(config, "ready") == {"default": "/ready"}


def test_http_binding_precedence():
    config = {"applications": [{"import_path": "m:a"}], "http_options": {"port": 8100}}
    r = resolve({}, {})
    assert serve.http_binding(config, r.settings, r.sources, env={})[1] == 8100
    r = resolve({"serve_http_port": "8200"}, {})
    with pytest.raises(BootError, match="set it in one place"):
        serve.http_binding(config, r.settings, r.sources, env={})


@pytest.mark.parametrize("marker", [None, ".dockerenv", "run/.containerenv"])
def test_host_default_depends_on_container(tmp_path, marker):
    """A machine laid out under tmp_path: no marker file, Docker's, or podman's, each a real file."""
    markers = tuple(str(tmp_path / name) for name in (".dockerenv", "run/.containerenv"))
    if marker:
        (tmp_path / marker).parent.mkdir(exist_ok=True)
        (tmp_path / marker).write_text("")
    r = resolve({}, {})
    config = {"applications": [{"import_path": "m:a"}]}
    host = serve.http_binding(config, r.settings, r.sources, env={}, markers=markers)[0]
    assert host == ("0.0.0.0" if marker else "127.0.0.1")
    assert serve.http_binding(config, r.settings, r.sources, env={"KUBERNETES_SERVICE_HOST": "x"},
                              markers=markers)[0] == "0.0.0.0"


def test_the_markers_looked_for_are_the_ones_the_docs_name():
    with open(os.path.join(REPO, "docs", "running.md")) as fh:
        text = fh.read()
    assert serve.CONTAINER_MARKERS and all(f"`{m}`" in text for m in serve.CONTAINER_MARKERS)


def test_finalize_sets_what_preflight_checked():
    out = serve.finalize({"applications": [{"import_path": "m:a"}]}, "127.0.0.1", 8123)
    assert out["http_options"] == {"host": "127.0.0.1", "port": 8123}


class _Dashboard:
    """A real HTTP server on loopback answering Serve's REST API the way a just-started head can: the PUT
    fails with the start-up race `fails` times, then succeeds."""

    RACE = ("ray.exceptions.ActorUnschedulableError: The actor is not schedulable: The node specified via "
            "NodeAffinitySchedulingStrategy doesn't exist any more or is infeasible, and soft=False was specified.")

    def __init__(self, fails, error=RACE):
        import http.server
        import threading

        outer = self
        self.puts = 0

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _send(self, code, text):
                self.send_response(code)
                self.end_headers()
                self.wfile.write(text.encode())

            def do_GET(self):
                self._send(200, '{"applications": {}}')

            def do_PUT(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.puts += 1
                self._send(500, error) if outer.puts <= fails else self._send(200, "")

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


class _Log:
    def __init__(self):
        self.lines = []

    def warn(self, phase, msg):
        self.lines.append(msg)


@pytest.fixture
def fast_retries(monkeypatch):
    monkeypatch.setattr(deploy, "START_RACE_PAUSE", 0.01)


def test_the_start_up_race_is_deployed_again(fast_retries):
    dash, log = _Dashboard(fails=2), _Log()
    deploy.Deployer(dash.url, {"applications": []}, {}, log).put()
    assert dash.puts == 3 and len(log.lines) == 2 and "ray-project/ray#64285" in log.lines[0]


def test_other_rejections_and_a_race_that_lasts_fail_the_deploy(fast_retries):
    dash = _Dashboard(fails=1, error="ValueError: bad import_path")
    with pytest.raises(deploy.ServeFailed, match="HTTP 500.*bad import_path"):
        deploy.Deployer(dash.url, {"applications": []}, {}, _Log()).put()
    assert dash.puts == 1
    dash = _Dashboard(fails=100)
    with pytest.raises(deploy.ServeFailed, match="ActorUnschedulableError"):
        deploy.Deployer(dash.url, {"applications": []}, {}, _Log()).put()
    assert dash.puts == deploy.START_RACE_RETRIES
