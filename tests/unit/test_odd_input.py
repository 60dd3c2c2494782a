"""Ordinary odd input (issue 24, defect 4): each of these was a traceback; now it is one BootError line (usage
exit 2, runtime exit 1) or the right behaviour. The property tests (test_props_*.py) look for more of the class;
what they found is pinned here too, in plain tests."""

import datetime
import json
import os
import socket
import subprocess
import sys
import threading

import psutil
import pytest

from seedcore_boot import cli
from seedcore_boot.config import addresses
from seedcore_boot.config.settings import resolve
from seedcore_boot.errors import EXIT_USAGE, BootError
from seedcore_boot.host import leftovers, state
from seedcore_boot.node import rayenv, status
from seedcore_boot.ray import gcsprobe, health, protowire, redisft
from seedcore_boot.serve import config as serve, deploy
from tests.skips import need


def usage(fn, *args, **kwargs):
    """The one usage line fn raises."""
    with pytest.raises(BootError) as err:
        fn(*args, **kwargs)
    assert err.value.exit_code == EXIT_USAGE and "\n" not in str(err.value), str(err.value)
    return str(err.value)


def settings_from(env=None, flags=None, config=None):
    return resolve(flags or {}, env or {}, config_path=config and str(config)).settings


def run_cli(monkeypatch, capsys, *argv):
    """(exit code, stderr, stdout) of seedcore-boot in this process, with no SEEDCORE_/RAY_ variable of ours."""
    for k in list(os.environ):
        if k.startswith(("SEEDCORE_", "RAY_")):
            monkeypatch.delenv(k)
    with pytest.raises(SystemExit) as exited:
        cli.main(list(argv))
    out = capsys.readouterr()
    return exited.value.code, out.err, out.out


# --- files that are not UTF-8 ---------------------------------------------------------------------------
def test_a_settings_file_with_a_latin1_comment_is_one_usage_line(tmp_path):
    cfg = tmp_path / "boot.yaml"
    cfg.write_bytes("gcs_port: 7000\n# r\u00e9glages du n\u0153ud\n".encode("latin-1", "replace"))
    text = usage(settings_from, config=cfg)
    assert "is not UTF-8 text (byte 0xe9 on line 2)" in text and "save it as UTF-8" in text


@pytest.mark.parametrize("encoding", ["utf-16", "utf-8-sig", "utf-32"])
def test_a_settings_file_with_a_byte_order_mark_is_read(tmp_path, encoding):
    # PowerShell's `>` writes UTF-16 LE with a BOM; Notepad's "UTF-8 with BOM" the UTF-8 one.
    cfg = tmp_path / "boot.yaml"
    cfg.write_bytes("# n\u0153ud\ngcs_port: 7000\n".encode(encoding))
    assert settings_from(config=cfg).gcs_port == 7000


def test_utf16_without_a_byte_order_mark_is_refused_not_misread(tmp_path):
    cfg = tmp_path / "boot.yaml"
    cfg.write_bytes("gcs_port: 7000\n".encode("utf-16-le"))
    assert "NUL characters" in usage(settings_from, config=cfg)


def test_a_serve_config_in_utf16_is_read_and_one_in_latin1_refused(tmp_path):
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    body = "applications:\n- name: caf\u00e9\n  import_path: app:app\n"
    good.write_bytes(body.encode("utf-16"))
    bad.write_bytes(body.encode("latin-1"))
    assert serve.load(str(good))["applications"][0]["name"] == "caf\u00e9"
    assert f"Serve config {bad} is not UTF-8 text (byte 0xe9 on line 2)" in usage(serve.load, str(bad))


def test_a_redis_password_file_that_is_not_utf8_is_one_line(tmp_path):
    secret = tmp_path / "pw"
    secret.write_bytes(b"p\xe4ss\n")
    s = settings_from({"SEEDCORE_BOOT_REDIS_ADDRESS": "127.0.0.1:6390",
                       "SEEDCORE_BOOT_REDIS_PASSWORD_FILE": str(secret)})
    with pytest.raises(BootError, match="is not UTF-8 text"):
        redisft.password(s)


# --- YAML values ------------------------------------------------------------------------------------------
def test_an_apostrophe_in_ray_args_is_one_usage_line():
    text = usage(settings_from, {"SEEDCORE_BOOT_RAY_ARGS": "--node-name=bob's-node"})
    assert "not a shell-quoted string (No closing quotation)" in text and "SEEDCORE_BOOT_RAY_ARGS" in text
    quoted = settings_from({"SEEDCORE_BOOT_RAY_ARGS": "\"--node-name=bob's-node\""})
    assert quoted.ray_args == ("--node-name=bob's-node",)


def test_yaml_dates_in_a_serve_config_reach_serve_as_iso_text(tmp_path):
    cfg = tmp_path / "serve.yaml"
    cfg.write_text("applications:\n- import_path: app:app\n  args: {trained_on: 2024-05-01, "
                   "at: 2024-05-01 12:30:00, 2024-01-01: new year}\n")
    final = serve.finalize(serve.load(str(cfg)), "127.0.0.1", 8000)
    args = final["applications"][0]["args"]
    assert args == {"trained_on": "2024-05-01", "at": "2024-05-01T12:30:00", "2024-01-01": "new year"}
    json.dumps(final)  # what the PUT to Serve's REST API sends


def test_an_inline_serve_config_with_a_date_is_plain_json_too(tmp_path):
    cfg = tmp_path / "boot.yaml"
    cfg.write_text("serve_config:\n  applications:\n  - import_path: app:app\n    args: {d: 2024-05-01}\n")
    config = serve.for_settings(settings_from(config=cfg))
    assert config["applications"][0]["args"] == {"d": "2024-05-01"}


@pytest.mark.parametrize("value, words", [
    ("2024-13-45", "month must be in 1..12"),  # PyYAML's timestamp pattern matches; datetime refuses it
    ("!!float x", "could not convert"),
    ("!!timestamp x", "not what its form says"),
])
def test_yaml_scalars_that_are_not_what_their_form_says_are_one_usage_line(tmp_path, value, words):
    cfg = tmp_path / "serve.yaml"
    cfg.write_text(f"applications:\n- import_path: app:app\n  args: {{d: {value}}}\n")
    assert words in usage(serve.load, str(cfg))


def test_what_json_cannot_carry_to_serve_is_named(tmp_path):
    looped, binary = tmp_path / "looped.yaml", tmp_path / "binary.yaml"
    looped.write_text("applications:\n- &a\n  import_path: app:app\n  args: {me: *a}\n")
    binary.write_text("applications:\n- import_path: app:app\n  args: {b: !!binary aGk=}\n")
    assert "applications[0].args.me contains itself" in usage(serve.load, str(looped))
    assert "applications[0].args.b is bytes" in usage(serve.load, str(binary))
    assert "name [1] is not a name" in usage(serve.validate, {"applications": [{"import_path": "a:b", "name": [1]}]},
                                             "x")


def test_serve_ports_and_host_of_the_wrong_type_are_one_usage_line():
    s, sources = settings_from(), {}
    grpc = {"applications": [{"import_path": "a:b"}],
            "grpc_options": {"port": "nine", "grpc_servicer_functions": ["m:f"]}}
    assert "grpc_options.port 'nine' is not a port number" in usage(serve.grpc_port, grpc)
    assert "http_options.port 70000" in usage(serve.http_binding, {"http_options": {"port": 70000}}, s, sources, {})
    assert "http_options.host ['a']" in usage(serve.http_binding, {"http_options": {"host": ["a"]}}, s, sources, {})


# --- names ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("address", ["ray..head:6379", f"{'h' * 64}.example:6379", ".:6379"])
def test_a_head_name_with_an_empty_or_over_long_label_is_one_usage_line(address):
    # socket.getaddrinfo encodes names with the idna codec: UnicodeError, which is no OSError
    assert "labels of 1 to 63 characters" in usage(addresses.parse_head_address, address)


def test_host_settings_and_redis_addresses_with_a_bad_label_are_usage_lines():
    assert "labels of 1 to 63" in usage(settings_from, {"SEEDCORE_BOOT_DASHBOARD_HOST": "a..b"})
    assert "bad redis_address" in usage(settings_from, {"SEEDCORE_BOOT_REDIS_ADDRESS": "redis..svc:6379"})


def test_tls_issue_with_a_non_ascii_name_is_one_usage_line(tmp_path, monkeypatch, capsys):
    assert run_cli(monkeypatch, capsys, "tls", "init", str(tmp_path / "ca"))[0] == 0
    code, err, _ = run_cli(monkeypatch, capsys, "tls", "issue", str(tmp_path), "--ca-dir", str(tmp_path / "ca"),
                           "--name", "caf\u00e9")
    assert code == 2 and "--name 'caf\u00e9' cannot name a certificate: not ASCII; its IDNA form is 'xn--caf-dma'" \
        in err and len(err.strip().splitlines()) == 1
    code, err, _ = run_cli(monkeypatch, capsys, "tls", "issue", str(tmp_path), "--ca-dir", str(tmp_path / "ca"),
                           "--name", "../elsewhere")
    assert code == 2 and "cannot name a certificate" in err
    assert not (tmp_path / "café.crt").exists() and not (tmp_path.parent / "elsewhere.crt").exists()
    code, _, _ = run_cli(monkeypatch, capsys, "tls", "issue", str(tmp_path), "--ca-dir", str(tmp_path / "ca"),
                         "--name", "xn--caf-dma")
    assert code == 0 and (tmp_path / "xn--caf-dma.crt").exists()


@pytest.mark.parametrize("command", [["init", "CA"], ["issue", "OUT", "--ca-dir", "CA"]])
def test_tls_days_beyond_a_century_are_one_usage_line(tmp_path, monkeypatch, capsys, command):
    argv = [str(tmp_path / a) if a in ("CA", "OUT") else a for a in command]
    code, err, _ = run_cli(monkeypatch, capsys, "tls", *argv, "--days", "3000000")
    assert code == 2 and "3000000 is not in the range 1<=x<=36500" in err and "Traceback" not in err


def test_a_huge_expiry_margin_refuses_the_certificate_rather_than_overflowing(tmp_path):
    from seedcore_boot.tls import certs

    cert, _ = certs.make_ca("test CA", 30)
    assert "within tls_expiry_margin_days (999999999999)" in certs.validity_problem(cert, 999999999999)


# --- peers that are not what they should be ---------------------------------------------------------------
def _one_answer(answer):
    """A loopback TCP server that answers every connection with `answer` and closes; its port."""
    srv = socket.create_server(("127.0.0.1", 0))

    def serve_forever():
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            with conn:
                conn.recv(4096)
                conn.sendall(answer)

    threading.Thread(target=serve_forever, daemon=True).start()
    return srv


@pytest.mark.parametrize("answer, words", [
    (b"SSH-2.0-OpenSSH_9.2\r\n", "not an HTTP answer (BadStatusLine"),
    (b"HTTP/1.0 200 OK\r\nContent-Length: 100\r\n\r\nshort", "not an HTTP answer (IncompleteRead"),
    (b"", "Remote end closed connection"),
])
def test_a_peer_that_is_not_http_fails_a_probe_in_words(answer, words):
    srv = _one_answer(answer)
    try:
        ok, detail = health.Probe("agent", f"http://127.0.0.1:{srv.getsockname()[1]}/x").once(timeout=5)
    finally:
        srv.close()
    assert not ok and words in detail


def test_a_dashboard_port_answering_json_that_is_not_an_object_is_not_serve():
    srv = _one_answer(b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\n[1,2]")
    try:
        url = f"http://127.0.0.1:{srv.getsockname()[1]}"
        assert deploy.instance(url) == (None, "not a JSON object")
        assert status._serve_rows(url) == [status.Row("serve", url, False, "not a JSON object")]
        assert health._is_version(200, "5") is False
    finally:
        srv.close()


def test_serves_answer_with_entries_of_the_wrong_type_is_read_without_them():
    details = {"applications": {"a": "x", "b": {"status": "RUNNING", "deployments": [1]}}, "proxies": [1]}
    assert deploy.mappings(details, "applications") == {"b": {"status": "RUNNING", "deployments": [1]}}
    assert deploy.app_message({"message": 5, "deployments": {"d": 1}}) == "(no message)"


def test_a_redis_port_answering_something_else_is_a_runtime_line():
    srv = _one_answer(b":not-a-number\r\n")
    try:
        s = settings_from({"SEEDCORE_BOOT_REDIS_ADDRESS": f"127.0.0.1:{srv.getsockname()[1]}"})
        with pytest.raises(BootError, match="is not reachable: not a Redis reply") as err:
            redisft.preflight(s, _Quiet())
        assert err.value.exit_code == 1
    finally:
        srv.close()


class _Quiet:
    def event(self, *a, **k):
        pass


@pytest.mark.parametrize("reply", [
    b"\x0a\x02\x08",   # status field cut short
    b"\x08\x05",       # status as a number, not a message
    b"\x12\x02\xff\xfe",  # ray_version that is not UTF-8
])
def test_a_check_alive_reply_that_is_not_one_is_not_healthy(reply):
    assert gcsprobe.check_alive_reply(reply)[:3] == (False, "the GCS port answered, but not like a Ray GCS", None)


def test_gcs_replies_with_fields_of_the_wrong_type_are_gcs_errors():
    entry = protowire.bytes_field
    node_id_as_number = entry(2, protowire.varint_field(1, 7) + protowire.varint_field(5, 6380))
    with pytest.raises(gcsprobe.GcsError):
        gcsprobe.nodes_reply(node_id_as_number, "", 6380)
    with pytest.raises(gcsprobe.GcsError):
        gcsprobe.nodes_reply(entry(2, protowire.varint_field(2, 5)), "", 0)  # the address as a number
    with pytest.raises(gcsprobe.GcsError):
        gcsprobe.drain_reply(b"\x12\x05\x01")  # the rejection message runs past the end
    with pytest.raises(gcsprobe.GcsError):
        gcsprobe.drain_reply(entry(1, b"yes"))  # is_accepted as bytes
    assert gcsprobe.versions_reply(entry(2, b'{"ray_version": "2.20.0"}')) is None
    assert gcsprobe.versions_reply(entry(2, b'{"ray_version": 2, "python_version": "3.11.7"}')) is None
    assert gcsprobe.versions_reply(entry(2, b'{"ray_version": "2.20.0", "python_version": "3.11.7"}')) == \
        ("2.20.0", "3.11.7")


# --- another user's node, hand-edited files ---------------------------------------------------------------
@pytest.fixture
def a_supervisor_lookalike():
    """A live process whose command line says seedcore_boot, as state.is_ours wants of a supervisor."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", "seedcore_boot"])
    yield proc.pid
    proc.kill()
    proc.wait()


@pytest.mark.parametrize("record", [
    {"pid": "PID"},  # no role
    {"pid": "PID", "role": "head", "ports": {"gcs": "6379"}},
    {"pid": "PID", "role": "head", "ports": [6379]},
    {"pid": "PID", "role": "queen"},
    [1, 2],
])
def test_a_hand_edited_node_file_is_not_a_node(tmp_path, a_supervisor_lookalike, record):
    s = settings_from({"SEEDCORE_BOOT_TEMP_DIR": str(tmp_path)})
    os.makedirs(s.state_dir())
    text = json.dumps(record).replace('"PID"', str(a_supervisor_lookalike))
    (tmp_path / "seedcore-boot" / "head-6380.json").write_text(text)
    assert state.running_nodes(s) == []
    report = status.check(s, mode="live")
    assert not report.ok and report.supervisor_pid is None


@pytest.mark.parametrize("text", ["[1, 2]", '{"ready": true, "pid"', '"ready"'])
def test_a_hand_edited_or_truncated_ready_file_is_not_ready(tmp_path, text):
    s = settings_from({"SEEDCORE_BOOT_TEMP_DIR": str(tmp_path)})
    os.makedirs(s.state_dir())
    with open(s.ready_path("head"), "w") as fh:
        fh.write(text)
    name, _, ok, detail = state.ready_row(s, "head", os.getpid())
    assert name == "ready" and not ok and detail


def test_another_users_supervisor_is_left_alone_and_stop_says_why(tmp_path, a_supervisor_lookalike, monkeypatch):
    s = settings_from({"SEEDCORE_BOOT_TEMP_DIR": str(tmp_path)})
    state.write_node(s, "head", {"gcs": 6379})
    path = state.node_file(s, "head")
    record = json.load(open(path))
    record["pid"] = a_supervisor_lookalike
    json.dump(record, open(path, "w"))

    # What psutil says of another user's process under hidepid (cmdline) and of signalling it (any kernel).
    def denied(self, *a, **k):
        raise psutil.AccessDenied(self.pid)

    monkeypatch.setattr(psutil.Process, "cmdline", denied)
    assert [p for p, _ in state.running_nodes(s)] == [path]  # alive, whose unknown: not removed as stale
    monkeypatch.setattr(psutil.Process, "send_signal", denied)
    with pytest.raises(BootError, match=r"is not this user's: not permitted to stop it; run stop as the user"):
        leftovers.stop(s, 5, lambda line: None)
    assert os.path.exists(path)


def test_a_node_file_from_another_pid_namespace_is_neither_running_nor_removed(tmp_path):
    s = settings_from({"SEEDCORE_BOOT_TEMP_DIR": str(tmp_path)})
    state.write_node(s, "head", {"gcs": 6379})
    path = state.node_file(s, "head")
    record = json.load(open(path))
    assert record["pidns"] == os.readlink("/proc/self/ns/pid")
    other = subprocess.Popen(["sleep", "60"])
    try:
        # The head's node file seen from KubeRay's autoscaler sidecar (the same /tmp/ray emptyDir, its own PID
        # namespace): the head's supervisor pid is some other process there.
        record.update(pid=other.pid, pidns="pid:[1]")
        json.dump(record, open(path, "w"))
        assert state.running_nodes(s) == [] and os.path.exists(path)
        record["pidns"] = os.readlink("/proc/self/ns/pid")  # the same pid in this namespace: stale, removed
        json.dump(record, open(path, "w"))
        assert state.running_nodes(s) == [] and not os.path.exists(path)
    finally:
        other.kill()
        other.wait()


# --- the environment --------------------------------------------------------------------------------------
def test_ray_use_tls_exported_with_tls_off_reaches_neither_ray_nor_our_gcs_calls():
    env = {"RAY_USE_TLS": "1", "PATH": "/usr/bin"}
    resolved = resolve({"tls": False}, env)
    assert resolved.settings.tls is False and resolved.sources["tls"] == "flag"
    child = rayenv.child_env(resolved.settings, "worker", env)
    assert "RAY_USE_TLS" not in child and child["PATH"] == "/usr/bin"
    gcsprobe.use_tls(child)  # was KeyError: 'RAY_TLS_SERVER_CERT'
    assert gcsprobe._tls is None


@pytest.mark.parametrize("value", ["inf", "nan", "-inf", "1e300", "-1"])
def test_a_duration_must_be_a_finite_non_negative_number(value):
    text = usage(settings_from, {"SEEDCORE_BOOT_READY_TIMEOUT": value})
    assert f"bad value '{value}' for ready_timeout" in text


@pytest.mark.parametrize("value", ['{"accel": Infinity}', '{"accel": NaN}', "[" * 100000])
def test_custom_resources_must_be_finite_and_shallow(value):
    assert "bad value" in usage(settings_from, {"SEEDCORE_BOOT_RESOURCES": value})


def test_a_nul_in_a_yaml_setting_is_one_usage_line(tmp_path):
    cfg = tmp_path / "boot.yaml"
    cfg.write_text('temp_dir: "/data/\\0ray"\n')
    assert "a NUL character" in usage(settings_from, config=cfg)


def test_serve_config_dates_as_plain_values():
    assert serve.plain({"d": datetime.date(2024, 5, 1), "t": [datetime.time(12, 0)]}, "x") == \
        {"d": "2024-05-01", "t": ["12:00:00"]}


# --- found by the property tests (test_props_*.py) ----------------------------------------------------------
def _cgroup(tmp_path, files):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return str(tmp_path)


def test_a_memory_limit_of_thousands_of_digits_is_no_limit(tmp_path):
    # int() refuses more than 4300 digits (ValueError): a traceback from every host check before
    from seedcore_boot.host import hostcheck, objectstore

    root = _cgroup(tmp_path, {"memory.max": "9" * 5000})
    assert objectstore.memory_limit(root) is None
    assert hostcheck.memory(root, total=2**34).size is None


@pytest.mark.parametrize("files", [
    {"cpu/cpu.cfs_quota_us": "100000", "cpu/cpu.cfs_period_us": "nan"},  # was math.floor(nan): ValueError
    {"cpu/cpu.cfs_quota_us": "inf", "cpu/cpu.cfs_period_us": "100000"},
    {"cpu/cpu.cfs_quota_us": "100000", "cpu/cpu.cfs_period_us": "-5"},
    {"cpu.max": "1" * 30 + " 100000"},
])
def test_a_cpu_quota_that_is_no_number_is_no_limit(tmp_path, files):
    from seedcore_boot.host import hostcheck

    found = hostcheck.cgroup_cpus(_cgroup(tmp_path, files))
    assert found["quota"] is None
    assert hostcheck.cpus(None, found, 4)[1].message.startswith("CPUs: 4 ")


@pytest.mark.parametrize("text", ["3-1", "\u00b2", "0-99999999999999999999999"])
def test_a_cpuset_that_is_no_list_of_cpus_is_unreadable(text):
    from seedcore_boot.host import hostcheck

    assert hostcheck.cpuset_count(text) is None  # "3-1" counted -1 CPUs


def test_serve_status_prints_an_answer_with_nulls_and_odd_entries(monkeypatch, capsys):
    # `serve status` formatted a null status with a width: TypeError from NoneType.__format__
    body = json.dumps({"applications": {"a": {"status": None, "route_prefix": None, "deployments": [1]},
                                        "b": "not an app"}}).encode()
    srv = _one_answer(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    try:
        code, _, out = run_cli(monkeypatch, capsys, "serve", "status", "--address",
                               f"http://127.0.0.1:{srv.getsockname()[1]}")
    finally:
        srv.close()
    assert code == 1 and out.split() == ["a", "None", "-", "(no", "message)"]


def test_an_error_status_whose_body_breaks_off_is_a_failed_probe():
    # the body of an HTTPError was read outside the try: IncompleteRead escaped the probe
    srv = _one_answer(b"HTTP/1.0 300 x\r\nContent-Length: 1\r\n\r\n")
    try:
        ok, detail = health.Probe("agent", f"http://127.0.0.1:{srv.getsockname()[1]}/x").once(timeout=5)
    finally:
        srv.close()
    assert not ok and detail.startswith("HTTP 300: not an HTTP answer (IncompleteRead")


def test_a_tail_of_no_lines_is_empty(tmp_path):
    from seedcore_boot.ray import raylogs

    (tmp_path / "raylet.out").write_text("a\nb\n")
    assert raylogs.tail(str(tmp_path / "raylet.out"), 0) == []  # keep[-0:] was every line


def test_a_resource_list_with_a_value_that_is_no_number_is_shown_as_written():
    from types import SimpleNamespace

    from seedcore_boot.ray import components

    raylet = SimpleNamespace(cmdline=lambda: ["raylet", "--static_resource_list=CPU,2,memory,lots"])
    assert components.advertised([(raylet, "raylet")]) == "CPU=2 memory=lots"  # float('lots'): ValueError


def _can_unshare():
    try:
        return subprocess.run(["unshare", "-nu", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def test_detection_on_a_host_without_a_route_whose_name_has_an_empty_label():
    need(_can_unshare(), "needs unshare -nu (root, or user namespaces)")
    # Ray's fallback is the host name's address; gethostbyname('a..b') raised UnicodeError, not OSError.
    # A network namespace of its own has no route; a UTS namespace of its own lets it take that name.
    code = ("import socket; socket.sethostname('a..b'); from seedcore_boot.host import nodeaddr; "
            "print(nodeaddr.detect('8.8.8.8', 53))")
    r = subprocess.run(["unshare", "-nu", sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "('127.0.0.1', 'no route towards 8.8.8.8')"


@pytest.mark.parametrize("host, expected", [("caf\u00e9", "xn--caf-dma"), ("bad_name!", None)])
def test_a_host_name_a_certificate_cannot_hold_is_given_in_idna_form_or_left_to_the_addresses(
        monkeypatch, host, expected):
    from seedcore_boot.tls import certs, nodetls as tls

    monkeypatch.setattr(socket, "gethostname", lambda: host)
    names = tls.names_for(settings_from(), "127.0.0.1")
    assert host not in names and (expected is None or expected in names)
    ca, key = certs.make_ca("test CA", 30)
    assert certs.names_in(certs.issue(ca, key, names, 1, "node")[0]) != []  # was ValueError from cryptography


def test_an_error_quoting_a_value_with_a_line_break_is_still_one_line():
    from seedcore_boot.config import kuberay

    text = usage(kuberay.pod, {kuberay.ENV: "ray start --x=`\nid`"})  # was two lines: the snippet's own break
    assert "command substitution (`\\nid`" in text


def test_a_head_port_of_a_digit_int_cannot_read_is_one_usage_line():
    assert "bad head address '0:\u00b2'" in usage(addresses.parse_head_address, "0:\u00b2")  # was int('²'): ValueError
