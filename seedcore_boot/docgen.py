"""docs/configuration.md, made from the code: the settings' metadata (settings.py) and the click commands (cli.py).

    python -m seedcore_boot.docgen --write    (from the repository root; without --write, the page to stdout)

Pure: nothing about the machine goes in, so the page is the same everywhere, and
tests/unit/test_configuration_doc.py fails when the file and what this makes now differ.
"""

import inspect
import re
import sys
from collections import namedtuple

import click

from .config import fields as fields_mod
from .node import rayenv
from .ray import raycmd

COMMAND = "python -m seedcore_boot.docgen --write"
PATH = "docs/configuration.md"
PROG = "seedcore-boot"

# What the `ray` text of a setting names, each in backticks: `ray start --flag`, an environment variable,
# or a key of the Serve config (`http_options.port`). tests/unit/config/test_settings_ray.py checks each one.
Claims = namedtuple("Claims", "flags env serve")


def ray_claims(text):
    flags, env, serve = [], [], []
    for token in re.findall(r"`([^`]+)`", text or ""):
        if token.startswith("ray start"):
            flags += [w for w in token.split() if w.startswith("--")]
        elif "." in token:
            serve.append(token)
        else:
            env.append(token)
    return Claims(tuple(flags), tuple(env), tuple(serve))


# --- Markdown ----------------------------------------------------------------------------------------
def cell(text):
    """Text for a table cell: backticked spans stay code; outside them <, > and & are entities (help texts
    say <temp_dir>) and * is literal; | is escaped everywhere, as GitHub's tables need even in code."""
    parts = " ".join(str(text).split()).split("`")
    out = []
    for i, part in enumerate(parts):
        if i % 2 == 0:
            part = part.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("*", r"\*")
        out.append(part.replace("|", r"\|"))
    return "`".join(out)


def code(text):
    """A code span for a table cell (only | needs escaping in one)."""
    return "`" + str(text).replace("|", r"\|") + "`" if text else ""


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def default_text(value):
    """A default as it is written in YAML: true/false, numbers, the string itself; unset and none."""
    if value is None:
        return "unset"
    if value == ():
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


# --- settings ----------------------------------------------------------------------------------------
def groups(settings_cls=fields_mod.Settings):
    """[(title, [field names])] as the class body groups them: a comment line opens a group, titled by the
    comment's first phrase ("# Serve (head)." -> "Serve (head)")."""
    out = [("Settings", [])]
    names = set(settings_cls.__dataclass_fields__)
    for line in inspect.getsource(settings_cls).splitlines():
        comment = re.match(r"    # (.*)", line)
        field = re.match(r"    (\w+): ", line)
        if comment:
            title = re.split(r"[.:] |\.$", comment.group(1), maxsplit=1)[0]
            out.append((title, []))
        elif field and field.group(1) in names:
            out[-1][1].append(field.group(1))
    return [(title, members) for title, members in out if members]


def _roles_note(roles):
    return "" if set(roles) == {"head", "worker"} else " (" + ", ".join(roles) + " only)"


def settings_section(cli):
    flags = setting_flags(cli)
    lines = []
    for title, members in groups():
        lines += ["", f"### {title}", ""]
        rows = []
        for name in members:
            f = fields_mod.FIELDS[name]
            meta = f.metadata
            rows.append([code(name) + _roles_note(meta["roles"]),
                         "<br>".join(code(e) for e in fields_mod.env_names(name)),
                         flags.get(name, ""),
                         code(default_text(f.default)),
                         cell(meta["ray"]),
                         cell(meta["help"])])
        lines += table(["Setting (YAML key)", "Environment", "Flag", "Default", "In Ray", "Description"], rows)
    return lines


def always_passed():
    """What every `ray start` gets whatever the settings: the argv and environment of the default settings
    that no setting's `ray` text names. ([head flags], [worker flags], [(variable, value, unless exported)])."""
    claimed = [ray_claims(f.metadata["ray"]) for f in fields_mod.FIELDS.values()]
    flags = {flag for c in claimed for flag in c.flags}
    env = {var for c in claimed for var in c.env}
    s = fields_mod.DEFAULTS

    def fixed(argv):
        return [a for a in argv[argv.index("start") + 1:] if a.split("=", 1)[0] not in flags]

    added = {}
    for role in ("head", "worker"):
        added.update(rayenv.additions(s, role))
    return (fixed(raycmd.head_argv(s)), fixed(raycmd.worker_argv(s, "HEAD:PORT")),
            [(k, v, k in rayenv.RAY_DEFAULTS) for k, v in added.items() if k not in env])


# --- commands ----------------------------------------------------------------------------------------
def commands(cli, ctx=None):
    """[(click.Context, command)] depth first, each group before its subcommands, in the order written."""
    ctx = ctx or click.Context(cli, info_name=PROG, **cli.context_settings)  # -h beside --help, as it runs
    out = [(ctx, cli)]
    for name, cmd in getattr(cli, "commands", {}).items():
        if not cmd.hidden:
            out += commands(cmd, click.Context(cmd, info_name=name, parent=ctx, **cmd.context_settings))
    return out


def _metavar(param, ctx):
    if getattr(param, "is_flag", False) or getattr(param, "count", False):
        return ""
    try:
        return param.make_metavar(ctx)  # click >= 8.2
    except TypeError:
        return param.make_metavar()


def option_flags(param, ctx):
    """`--gcs-port, --port PORT`, `--monitor / --no-monitor`: an option's spellings as --help shows them."""
    text = ", ".join(param.opts)
    if param.secondary_opts:
        text += " / " + ", ".join(param.secondary_opts)
    metavar = _metavar(param, ctx)
    return text + (" " + metavar if metavar else "")


def setting_flags(cli):
    """{setting: its flag in the Flag column}, from the options (and the ray_args argument) of every
    command. One spelling per setting: a command that spelled one differently would make the column lie."""
    seen = {}
    for ctx, cmd in commands(cli):
        for p in cmd.params:
            if p.name not in fields_mod.FIELDS or getattr(p, "hidden", False):
                continue
            text = code(option_flags(p, ctx)) if isinstance(p, click.Option) else \
                code(_metavar(p, ctx)) + " (after the options)"
            seen.setdefault(p.name, {}).setdefault(text, []).append(ctx.command_path)
    out = {}
    for name, spellings in seen.items():
        if len(spellings) > 1:
            raise ValueError(f"the {name} setting has different flags on different commands: {spellings}")
        out[name] = next(iter(spellings))
    return out


def _paragraphs(text):
    return [" ".join(p.split()) for p in inspect.cleandoc(text or "").split("\n\n") if p.strip()]


def _settings_sentence(cmd):
    """Which setting flags a command takes, said as a role's set and the exceptions."""
    given = [p.name for p in cmd.params if p.name in fields_mod.FIELDS]
    if not given:
        return None
    fields = fields_mod.FIELDS
    choices = [("every setting", list(fields))] + [
        (f"every {role} setting", [n for n in fields if role in fields[n].metadata["roles"]])
        for role in ("head", "worker")]
    label, members = min((c for c in choices if set(given) <= set(c[1])), key=lambda c: len(c[1]) - len(given))
    missing = [n for n in members if n not in given]
    text = f"Settings: the flag of {label} in [Settings](#settings)"
    return text + (", except " + ", ".join(code(n) for n in missing) if missing else "") + "."


def _option_default(param, ctx):
    """"on" for a switch that is on unless given; the value of an option that has one; else nothing (click's
    own "no default" differs between versions: None, or a sentinel)."""
    value = param.get_default(ctx, call=False)
    if param.is_flag:
        return "on" if value is True or (not param.is_bool_flag and value == param.flag_value) else ""
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return code(default_text(value))
    return ""


def commands_section(cli):
    lines = []
    for ctx, cmd in commands(cli):
        lines += ["", f"### `{ctx.command_path}`", ""]
        for para in _paragraphs(cmd.help):
            lines += [cell(para), ""]
        lines.append("Usage: " + code(" ".join([ctx.command_path, *cmd.collect_usage_pieces(ctx)])))
        subs = [name for name, sub in getattr(cmd, "commands", {}).items() if not sub.hidden]
        if subs:
            lines += ["", "Commands: " + ", ".join(code(f"{ctx.command_path} {n}") for n in subs) + "."]
        sentence = _settings_sentence(cmd)
        if sentence:
            lines += ["", sentence]
        own = [p for p in cmd.params if isinstance(p, click.Option) and p.name not in fields_mod.FIELDS
               and not p.hidden]
        if cmd is cli:
            own.append(cmd.get_help_option(ctx))
        if own:
            lines.append("")
            lines += table(["Option", "Default", "Description"],
                           [[code(option_flags(p, ctx)), _option_default(p, ctx), cell(p.help or "")] for p in own])
    return lines


# --- the page ----------------------------------------------------------------------------------------
def page(cli=None):
    if cli is None:
        from .cli import cli
    head_flags, worker_flags, env = always_passed()
    env_text = ", ".join(code(f"{k}={v}") + (" (unless exported)" if unless else "") for k, v, unless in env)
    lines = [
        "# Configuration",
        "",
        f"<!-- Generated by `{COMMAND}` from seedcore_boot/config/fields.py and seedcore_boot/cli.py: "
        "edit those, not this page. tests/unit/test_configuration_doc.py fails when they disagree. -->",
        "",
        f"This page is generated from the code: run `{COMMAND}` from the repository root after changing a "
        "setting or a command, and `tests/unit/test_configuration_doc.py` fails until you do.",
        "",
        "Every setting of a node comes from one chain; each source wins over the ones before it:",
        "",
        "1. the default (the tables below);",
        "2. the YAML settings file given by `--config FILE` or `$SEEDCORE_BOOT_CONFIG`: a mapping of the "
        "setting names below to values (an unknown key is an error), in UTF-8 (UTF-16 or UTF-32 with a byte "
        "order mark, as PowerShell writes, is read too; a Serve config file likewise);",
        "3. in a KubeRay pod, the `ray start` command KubeRay generated for it (`KUBERAY_GEN_RAY_START_CMD`: "
        "the pod's rayStartParams and resource limits); a value given there and, differently, in another "
        "source is an error that names both, except `ray_args`, which are joined (see [Kubernetes](kubernetes.md));",
        "4. the environment: `SEEDCORE_BOOT_<NAME>`, or the other variables of the Environment column "
        "(several set for one setting must agree);",
        "5. flags.",
        "",
        "`seedcore-boot config show` prints every setting's value and where it came from (`--json` for "
        "scripts); secrets are shown as `***`. `seedcore-boot head --dry-run` (and `worker --dry-run`) prints "
        "the `ray start` command and the environment it would get, and starts nothing.",
        "",
        "Values: a switch is `true`/`false` (also 1/0, yes/no, on/off) and as a flag `--x`/`--no-x`; "
        "BYTES is a number of bytes or one with a binary unit, as Docker's shm_size (`512mb`, `2gb`); "
        "SECONDS may have a fraction (not inf or nan); a PATH must be absolute; `ray_args` is one shell-quoted "
        "string in the environment or YAML (quote an apostrophe: `\"--node-name=bob's-node\"`), a list in YAML, "
        "and the words after `--` on the command line.",
        "",
        "Mutual TLS is described in [Security](security.md); the [README](../README.md) has the overview.",
        "",
        "## Settings",
        "",
        "In Ray: the `ray start` option or environment variable a setting becomes (checked against the code "
        "that builds them by tests/unit/config/test_settings_ray.py); *ours* when only seedcore-boot reads it. "
        "Settings marked head or worker only apply to that node and are reported, not used, on the other.",
        *settings_section(cli),
        "",
        "Whatever the settings, a head's `ray start` also gets " + " ".join(code(a) for a in head_flags)
        + ", a worker's " + " ".join(code(a) for a in worker_flags) + "; and the environment " + env_text + ".",
        "",
        "## Commands",
        "",
        "Generated from the click commands; `--help` on each says the same, with every environment variable "
        "read.",
        *commands_section(cli),
    ]
    return "\n".join(lines) + "\n"


def main(argv=None):
    args = sys.argv[1:] if argv is None else argv
    if args not in ([], ["--write"]):
        print(f"usage: python -m seedcore_boot.docgen [--write]   (--write: to {PATH}, from the repository root)",
              file=sys.stderr)
        sys.exit(2)
    text = page()
    if not args:
        sys.stdout.write(text)
        return
    try:
        with open(PATH, "w", encoding="utf-8") as fh:
            fh.write(text)
    except FileNotFoundError:
        sys.exit(f"no {PATH} here: run this from the repository root")
    print(f"wrote {PATH}", file=sys.stderr)


if __name__ == "__main__":
    main()
