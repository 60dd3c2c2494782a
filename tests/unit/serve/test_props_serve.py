"""Serve configs (serve/config.py) as users write them, in Ray's schema and not, in any encoding and as any bytes; and
the answers of Serve's REST API, whatever listens on the dashboard's port. A config that validates must be
plain JSON (what the PUT sends) and give the head its binding and health routes."""

import json
import os

import yaml
from hypothesis import given, strategies as st

from seedcore_boot.config.settings import resolve
from seedcore_boot.errors import BootError
from seedcore_boot.serve import config as serve, deploy
from tests.props import any_text, nested, result_or_boot_error

key = st.one_of(st.sampled_from(serve._APP_KEYS), any_text)
app_value = st.one_of(nested, st.sampled_from(["app:app", "my_pkg.app:app", "/", "/api", "", "nope", 8000]))
app = st.dictionaries(key, app_value, max_size=5)
http = st.dictionaries(st.sampled_from(["host", "port", "location"]),
                       st.one_of(nested, st.sampled_from(["0.0.0.0", "a..b", "::", 8000, "8000", 0, 70000])),
                       max_size=2)
config = st.one_of(
    st.fixed_dictionaries({"applications": st.lists(app, max_size=3)},
                          optional={"http_options": st.one_of(http, nested),
                                    "grpc_options": st.one_of(nested, st.fixed_dictionaries(
                                        {"port": app_value, "grpc_servicer_functions": st.just(["m:f"])})),
                                    "proxy_location": nested, "bogus": nested}),
    nested,
)


def check_config(data, label="props"):
    validated = result_or_boot_error(serve.validate, data, label)
    if isinstance(validated, BootError):
        return
    assert json.loads(json.dumps(validated, allow_nan=True)) is not None
    settings = resolve({}, {}).settings
    binding = result_or_boot_error(serve.http_binding, validated, settings, {}, {})
    result_or_boot_error(serve.grpc_port, validated)
    assert isinstance(serve.health_routes(validated), dict)
    if not isinstance(binding, BootError):
        final = serve.finalize(validated, *binding)
        json.dumps(final)  # the body of the PUT to Serve's REST API


@given(config)
def test_any_serve_config_validates_to_plain_json_or_is_one_usage_line(data):
    check_config(data)


def _dumped(data, encoding):
    try:
        return yaml.safe_dump(data, allow_unicode=True).encode(encoding, "replace")
    except (yaml.YAMLError, UnicodeEncodeError):
        return b""


files = st.one_of(
    st.tuples(config, st.sampled_from(["utf-8", "utf-16", "utf-8-sig", "latin-1"])).map(lambda t: _dumped(*t)),
    st.binary(max_size=80),
    st.sampled_from([b"applications:\n- import_path: a:b\n  args: {d: 2024-05-01, t: 2024-05-01 10:00:00}\n",
                     b"applications:\n- &a {import_path: a:b, args: [*a]}\n",
                     b"applications:\n- {import_path: a:b, args: {2024-01-01: x, [1]: y}}\n",
                     b"applications:\n- {import_path: a:b, name: [x]}\n"]),
)


@given(files)
def test_any_serve_config_file_loads_or_is_one_usage_line(scratch, data):
    path = os.path.join(scratch, "serve.yaml")
    with open(path, "wb") as fh:
        fh.write(data)
    loaded = result_or_boot_error(serve.load, path)
    if not isinstance(loaded, BootError):
        check_config(loaded)


json_values = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                                     any_text),
                           lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                   st.dictionaries(any_text, inner, max_size=3)), max_leaves=10)
app_answer = st.one_of(json_values, st.fixed_dictionaries({}, optional={
    "status": st.one_of(st.sampled_from(["RUNNING", "DEPLOY_FAILED", "UNHEALTHY"]), json_values),
    "message": json_values, "route_prefix": json_values, "last_deployed_time_s": json_values,
    "deployments": st.one_of(json_values, st.dictionaries(any_text, st.one_of(json_values, st.fixed_dictionaries(
        {}, optional={"status": json_values, "message": json_values})), max_size=2))}))
instance = st.one_of(json_values, st.fixed_dictionaries({}, optional={
    "applications": st.one_of(json_values, st.dictionaries(any_text, app_answer, max_size=3)),
    "proxies": st.one_of(json_values, st.dictionaries(any_text, json_values, max_size=2)),
    "http_options": json_values}))


@given(instance)
def test_any_answer_of_serves_rest_api_is_read(details):
    for entries in (deploy.mappings(details, "applications"), deploy.mappings(details, "proxies")):
        assert all(isinstance(v, dict) for v in entries.values())
    for entry in deploy.mappings(details, "applications").values():
        message = deploy.app_message(entry)
        assert isinstance(message, str) and "\n" not in message
