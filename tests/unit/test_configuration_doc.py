"""docs/configuration.md and the code cannot disagree: the page is what seedcore_boot.docgen makes now, and,
said separately so that a failure names what drifted, it has a row for every setting (and none for a
setting that is gone) with the setting's default, and every command and option of the CLI."""

import difflib
import os
import re
import subprocess
import sys

import click
import pytest

from seedcore_boot import docgen
from seedcore_boot.cli import cli
from seedcore_boot.config.fields import FIELDS, env_names
from tests import REPO

PAGE = os.path.join(REPO, *docgen.PATH.split("/"))
FIX = f"regenerate it: `{docgen.COMMAND}` from the repository root"


@pytest.fixture(scope="module")
def text():
    with open(PAGE, encoding="utf-8") as fh:
        return fh.read()


def test_the_page_is_what_the_generator_makes_now(text):
    made = docgen.page()
    diff = "".join(list(difflib.unified_diff(text.splitlines(True), made.splitlines(True), "the page",
                                             "the code now", n=0))[:40])
    assert text == made, f"{docgen.PATH} is out of date: {FIX}\n{diff}"


def test_the_page_names_the_command_that_makes_it(text):
    assert docgen.COMMAND in text.split("## Settings")[0]


def cells(line):
    return [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]


def setting_rows(text):
    """{name: [cells]} of the settings tables: the rows between ## Settings and ## Commands."""
    section = text.split("\n## Settings\n", 1)[1].split("\n## Commands\n", 1)[0]
    rows = {}
    for line in section.splitlines():
        m = re.match(r"\| `(\w+)`", line)
        if m:
            assert m.group(1) not in rows, f"{m.group(1)} has two rows in {docgen.PATH}"
            rows[m.group(1)] = cells(line)
    return rows


def yaml_default(value):
    if value is None:
        return "unset"
    if value == ():
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def test_every_setting_has_its_row_and_no_row_outlives_its_setting(text):
    rows = setting_rows(text)
    missing = [n for n in FIELDS if n not in rows]
    gone = [n for n in rows if n not in FIELDS]
    assert not missing and not gone, f"{docgen.PATH} lacks settings {missing} and documents settings that " \
                                     f"no longer exist {gone}; {FIX}"


@pytest.mark.parametrize("name", list(FIELDS))
def test_each_row_has_the_default_the_variables_and_ray(text, name):
    row = setting_rows(text).get(name)
    assert row, f"no row for {name} in {docgen.PATH}; {FIX}"
    setting, env, _flag, default, ray, description = row
    want = "`" + yaml_default(FIELDS[name].default) + "`"
    assert default == want, f"{name}: the page says default {default}, the code {want}; {FIX}"
    for var in env_names(name):
        assert f"`{var}`" in env, f"{name}: ${var} sets it but the page does not say so; {FIX}"
    assert ray and description, f"{name}: no In Ray or description in the page; {FIX}"
    roles = FIELDS[name].metadata["roles"]
    assert ("only" in setting) == (len(roles) == 1), f"{name}: applies to {roles}, the page says {setting}"


def walk(cmd, path="seedcore-boot"):
    yield path, cmd
    for name, sub in getattr(cmd, "commands", {}).items():
        yield from walk(sub, f"{path} {name}")


def sections(text):
    """{command path: its section}, from the ### `seedcore-boot ...` headings."""
    parts = re.split(r"^### `(seedcore-boot[^`]*)`$", text.split("\n## Commands\n", 1)[1], flags=re.M)
    return dict(zip(parts[1::2], parts[2::2]))


def test_every_command_and_option_is_on_the_page(text):
    found, rows = sections(text), setting_rows(text)
    absent = []
    for path, cmd in walk(cli):
        if path not in found:
            absent.append(f"command `{path}`")
            continue
        for p in cmd.params:
            if isinstance(p, click.Argument):
                if (p.metavar or p.name.upper()) not in found[path]:
                    absent.append(f"`{path}` argument {p.name}")
                continue
            where = rows[p.name][2] if p.name in FIELDS and p.name in rows else found[path]
            absent += [f"`{path}` {opt}" for opt in p.opts + p.secondary_opts
                       if not re.search(rf"(?<![\w-]){re.escape(opt)}(?![\w-])", where)]
    gone = [path for path in found if path not in dict(walk(cli))]
    assert not absent, f"missing from {docgen.PATH}: {', '.join(absent)}; {FIX}"
    assert not gone, f"{docgen.PATH} documents commands that no longer exist: {gone}; {FIX}"


def test_table_cells_escape_the_pipe():
    assert docgen.cell("a | b `x|y`") == r"a \| b `x\|y`"
    assert docgen.cell("in <temp_dir>/x, session_* dirs") == r"in &lt;temp_dir&gt;/x, session_\* dirs"



@pytest.mark.parametrize("seed", ["1", "2"])
def test_the_page_does_not_depend_on_the_process_that_makes_it(seed):
    """Deterministic across processes: a set or dict iterated in hash order would differ with PYTHONHASHSEED
    (a second call in one process would always agree with the first)."""
    out = subprocess.run([sys.executable, "-c", "from seedcore_boot import docgen; print(docgen.page(), end='')"],
                         env=dict(os.environ, PYTHONHASHSEED=seed), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout == docgen.page()
