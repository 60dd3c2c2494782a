"""Settings values from the environment, flags and YAML (values.py, settings.py), the settings file itself as
any bytes, and KubeRay's KUBERAY_GEN_RAY_START_CMD (kuberay.py) as the operator writes it and as anything else."""

import os

import yaml
from hypothesis import given, strategies as st

from seedcore_boot.config import kuberay
from seedcore_boot.config.fields import FIELDS, env_names
from seedcore_boot.config.settings import resolve
from seedcore_boot.config.values import parse
from tests.props import any_text, ascii_text, nested, result_or_boot_error

field_names = st.sampled_from(sorted(FIELDS))
# What an environment variable can hold: any text without NUL.
env_text = st.one_of(ascii_text, st.text(max_size=20)).map(lambda t: t.replace("\0", ""))
# Values that look like what users give: numbers with units, flags, addresses, paths, quoted arguments.
plausible = st.one_of(env_text, st.sampled_from([
    "inf", "nan", "-1", "0", "1e300", "2gb", "1.5GiB", "512m", "true", "off", "127.0.0.1", "::1", "fe80::1%eth0",
    "/tmp/ray", "relative/dir", "a..b", "ray-head:6379", "[::1]:6379", "redis://r:6379", "rediss://[::1]:1",
    '{"accel": 1}', '{"a": -1}', '{"a": Infinity}', "[" * 3000, "--node-name=bob's-node", "'--a=b c' --d",
    "text,json", "json"]))


@given(field_names, st.one_of(nested, plausible))
def test_any_raw_value_of_any_setting_parses_or_is_one_usage_line(name, raw):
    meta = FIELDS[name].metadata
    result_or_boot_error(parse, name, meta["kind"], FIELDS[name].default, raw, "test")


@given(st.dictionaries(field_names.flatmap(lambda n: st.sampled_from(env_names(n))), plausible, max_size=4))
def test_any_environment_resolves_or_is_one_usage_line(env):
    result_or_boot_error(resolve, {}, env)


def _dumped(mapping):
    try:
        return yaml.safe_dump(mapping, allow_unicode=True).encode("utf-8", "surrogatepass")
    except yaml.YAMLError:
        return b""


yaml_files = st.one_of(
    st.dictionaries(field_names, st.one_of(nested, plausible), max_size=4).map(_dumped),  # the right shape
    st.binary(max_size=60),  # anything at all
    st.sampled_from(["utf-16", "utf-8-sig", "latin-1", "utf-32"]).flatmap(
        lambda enc: st.dictionaries(field_names, plausible, max_size=3).map(
            lambda m: yaml.safe_dump(m, allow_unicode=True).encode(enc, "replace"))),
    st.sampled_from([b"gcs_port: 2024-13-45\n", b"a: !!float x\n", b"&a [*a]\n", b"[" * 5000, b"{a: b}: c\n"]),
)


@given(yaml_files)
def test_any_settings_file_resolves_or_is_one_usage_line(scratch, data):
    path = os.path.join(scratch, "boot.yaml")
    with open(path, "wb") as fh:
        fh.write(data)
    result_or_boot_error(resolve, {}, {}, config_path=path)


# KUBERAY_GEN_RAY_START_CMD: `ray start` and --key=value words, with KubeRay's quoting and $VARs.
flag_keys = st.sampled_from(sorted({*kuberay.TO_SETTING, *kuberay.INVERTED, *kuberay.ALWAYS, *kuberay.REFUSED,
                                    *kuberay.PASS_THROUGH, "head", "not-an-option"}))
flag_values = st.one_of(plausible, st.sampled_from(["$MY_POD_IP", "${REDIS_PASSWORD}", "'single quoted'",
                                                    '"double $HOME"', "$(id)", "`id`", "a\\ b", "x;y", "'open"]))
words = st.lists(st.tuples(flag_keys, st.one_of(st.none(), flag_values)).map(
    lambda kv: f"--{kv[0]}" if kv[1] is None else f"--{kv[0]}={kv[1]}"), max_size=5)
commands = st.one_of(words.map(lambda w: " ".join(["ray", "start", *w])), any_text,
                     words.map(lambda w: "  ray start  " + "  ".join(w) + " "))


@given(commands, st.sampled_from([None, "head", "worker"]),
       st.dictionaries(st.sampled_from(["MY_POD_IP", "REDIS_PASSWORD", "HOME", kuberay.EXTRA_TAGS]), env_text,
                       max_size=3))
def test_any_generated_ray_start_command_reads_or_is_one_usage_line(command, role, more):
    env = {kuberay.ENV: command, **more}
    pod = result_or_boot_error(kuberay.pod, env, role, parent_argv=[])
    if pod is not None and not isinstance(pod, Exception):
        assert pod.role in ("head", "worker")
    result_or_boot_error(resolve, {}, env)
