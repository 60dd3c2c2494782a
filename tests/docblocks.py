"""The command blocks of README.md and docs/*.md, as the tests run them.

Every ```sh/```bash block carries a marker on the line right before it:
  <!-- run: tests/e2e/test_doc_blocks.py::test_name -->   the test that runs it as written and checks its result
  <!-- not run: the reason -->                            a block that cannot run here
tests/unit/test_doc_blocks.py checks that, and that every named test exists.
"""

import glob
import os
import re
import shutil
import subprocess

from tests import REPO

SHELLS = ("sh", "bash", "shell", "console")
MARK = re.compile(r"<!--\s*(run|not run):\s*(.*?)\s*-->")


def pages():
    return [os.path.join(REPO, "README.md")] + sorted(glob.glob(os.path.join(REPO, "docs", "*.md")))


def blocks(path):
    """[(line number, language, marker kind or None, marker text, lines of the block)] of one page."""
    lines = open(path, encoding="utf-8").read().split("\n")
    out, i = [], 0
    while i < len(lines):
        fence = re.match(r"^(```+)\s*(\S*)", lines[i])
        if not fence:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith(fence.group(1)))
        mark = MARK.fullmatch(lines[i - 1].strip()) if i else None
        out.append((i + 1, fence.group(2), mark.group(1) if mark else None, mark.group(2) if mark else "",
                    lines[i + 1:end]))
        i = end + 1
    return out


def marked(page, test_name):
    """The blocks (their lines) on `page` (relative to the repo) whose marker names `test_name`, in order."""
    found = [b[4] for b in blocks(os.path.join(REPO, page)) if b[2] == "run" and b[3].endswith("::" + test_name)]
    assert found, f"{page}: no block marked for {test_name}"
    return found


def block(page, test_name):
    """The one block on `page` marked for `test_name`."""
    found = marked(page, test_name)
    assert len(found) == 1, f"{page}: {len(found)} blocks marked for {test_name}"
    return found[0]


def commands(lines):
    """The commands of a block, as a shell reads them: continuations joined, comment-only lines left out."""
    out, pending = [], ""
    for line in lines:
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        line, pending = pending + line, ""
        if line.strip() and not line.strip().startswith("#"):
            out.append(line.strip())
    return out


def compose_v2():
    return shutil.which("docker") is not None and subprocess.run(
        ["docker", "compose", "version"], capture_output=True).returncode == 0


def typed(command):
    """The substitutions docs/development.md lists: compose v1 (`docker-compose`) where v2 is not installed, and
    no `sudo` for root where sudo is not installed."""
    if not compose_v2():
        command = command.replace("docker compose ", "docker-compose ")
    if os.geteuid() == 0 and not shutil.which("sudo"):
        command = re.sub(r"(^|&&\s*|;\s*)sudo ", r"\1", command)
    return command


def run(command, cwd, env=None, timeout=600):
    """One command of a block in bash, as typed."""
    return subprocess.run(["bash", "-c", typed(command)], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
