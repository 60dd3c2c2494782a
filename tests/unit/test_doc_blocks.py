"""Every command block a user would run in README.md and docs/*.md is run by a named test, or marked with why
it cannot run here (tests/docblocks.py describes the markers)."""

import os
import re

from tests import docblocks


def shell_blocks():
    for page in docblocks.pages():
        for line, lang, kind, text, _ in docblocks.blocks(page):
            if lang in docblocks.SHELLS or lang == "":
                yield os.path.relpath(page, docblocks.REPO), line, lang, kind, text


def test_every_shell_block_is_run_or_marked_with_a_reason():
    unmarked = [f"{page}:{line}" for page, line, lang, kind, text in shell_blocks()
                if lang == "" or kind is None or not text]
    assert not unmarked, ("fenced blocks without a language, or without <!-- run: tests/...::test_x --> or "
                          f"<!-- not run: why --> on the line before: {unmarked}")


def test_every_named_test_exists():
    for page, line, _, kind, text in shell_blocks():
        if kind != "run":
            continue
        path, sep, name = text.partition("::")
        assert sep and re.fullmatch(r"tests/[\w/]+\.py", path), f"{page}:{line}: {text!r} is not tests/FILE.py::test"
        source = os.path.join(docblocks.REPO, path)
        assert os.path.isfile(source), f"{page}:{line}: no {path}"
        assert re.search(rf"^def {re.escape(name)}\(", open(source).read(), re.M), f"{page}:{line}: no {text}"


def test_the_blocks_are_seen(tmp_path):
    """The reader itself: a marked block, an unmarked one and a text block (output, not commands)."""
    page = tmp_path / "p.md"
    page.write_text("x\n<!-- run: tests/e2e/a.py::test_a -->\n```sh\necho a \\\n  b  # c\n# only a comment\n```\n"
                    "```bash\nls\n```\n<!-- not run: no reason -->\n```text\nout\n```\n")
    got = docblocks.blocks(str(page))
    assert [(b[1], b[2], b[3]) for b in got] == [("sh", "run", "tests/e2e/a.py::test_a"), ("bash", None, ""),
                                                ("text", "not run", "no reason")]
    assert docblocks.commands(got[0][4]) == ["echo a    b  # c"]


def test_the_kuberay_tls_block_is_what_the_manifest_runs():
    """docs/security.md's KubeRay block is not run itself: raycluster-tls.yaml holds it (and is run)."""
    import shlex

    import yaml
    (block,) = [b for b in docblocks.blocks(os.path.join(docblocks.REPO, "docs", "security.md"))
                if b[2] == "not run" and "raycluster-tls.yaml" in b[3]]
    (command,) = docblocks.commands(block[4])
    shown_env = dict(pair.split("=", 1) for line in block[4] if line.startswith("#   ") for pair in line[4:].split())
    docs = list(yaml.safe_load_all(open(os.path.join(docblocks.REPO, "deploy", "kuberay", "raycluster-tls.yaml"))))
    cluster = next(d for d in docs if d and d.get("kind") == "RayCluster")
    for pod in [cluster["spec"]["headGroupSpec"]] + cluster["spec"]["workerGroupSpecs"]:
        init = pod["template"]["spec"]["initContainers"][0]["command"]
        assert init[:len(shlex.split(command))] == shlex.split(command), init
        env = {e["name"]: e["value"] for e in pod["template"]["spec"]["containers"][0]["env"]}
        assert {k: env.get(k) for k in shown_env} == shown_env


def test_readmes_test_command_is_exactly_what_ci_runs():
    """README's second command is the one .ci/run executes (after CI's two variables and the engine trap)."""
    (block,) = [b for b in docblocks.blocks(os.path.join(docblocks.REPO, "README.md"))
                if b[2] == "run" and b[3].endswith("::test_readme_test_command")]
    (readme,) = docblocks.commands(block[4])
    ci = [l.strip() for l in open(os.path.join(docblocks.REPO, ".ci", "run")) if l.strip() and not l.startswith("#")]
    assert ci[-1] == readme == "scripts/test", (ci[-1], readme)
    assert "export CI=true SEEDCORE_REQUIRE_ALL=1" in ci and "trap 'bash tests/docker/engine.sh stop' EXIT" in ci
    top = open(os.path.join(docblocks.REPO, "README.md")).read().split("\n---\n", 1)[0]
    assert top.index("test_readme_install_and_head") < top.index("test_readme_test_command")


def test_scripts_test_passes_shellcheck():
    import shutil
    import subprocess

    from tests.skips import need
    need(shutil.which("shellcheck"), "needs shellcheck (Debian's shellcheck)")
    out = subprocess.run(["shellcheck", os.path.join(docblocks.REPO, "scripts", "test")], capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stdout
