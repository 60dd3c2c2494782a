"""KubeRay as a source of settings: what a pod's user asked for, read from what the operator hands the Ray
container. Nothing outside settings.resolve knows this module exists.

KubeRay (v1.1.0+, PR #1704) runs the container's own command when the RayCluster carries the annotation
`ray.io/overwrite-container-cmd: "true"`, and still puts the `ray start` it would have run into
KUBERAY_GEN_RAY_START_CMD: `ray start [--head]` and one ` --key=value ` per rayStartParams entry plus its
own defaults (head: dashboard-host=0.0.0.0; both: metrics-export-port=8080, dashboard-agent-listen-port=52365,
block; worker: address=<cluster>-head-svc.<ns>.svc.cluster.local:<port>; num-cpus / memory / num-gpus from the
container's limits, num-cpus rounded up; head with in-tree autoscaling: no-monitor). A value "true" becomes a
bare switch and "false" is left out, except for include-dashboard and log-color. v1.1 writes the flags in Go
map order (random), v1.3+ sorted; values are written as the user wrote them, for a shell to expand
(`--redis-password=$REDIS_PASSWORD`, `--node-ip-address=$MY_POD_IP`), quotes included. Sources: ray-project/
kuberay v1.1.1, ray-operator/controllers/ray/common/pod.go (BuildPod, generateRayStartCommand,
convertParamMap, setMissingRayStartParams, setContainerEnvVars).

Without the annotation KubeRay rewrites our command into `/bin/bash -lc -- "<ours> && ulimit -n 65536;
<ray start ...>"`, and bash runs that `ray start` after we exit, whatever our exit code (CommandRewritten).
"""

import os
import re
import signal
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from ..errors import EXIT_USAGE, BootError, usage_error
from .fields import SETTING_OF_OPTION

ENV = "KUBERAY_GEN_RAY_START_CMD"
EXTRA_TAGS = "RAY_USAGE_STATS_EXTRA_TAGS"  # head: kuberay_version=v1.1.1;kuberay_crd=RayCluster|RayService|RayJob
ANNOTATION = 'ray.io/overwrite-container-cmd: "true"'
SOURCE = "kuberay"

# rayStartParams key -> our setting: the names of `ray start`'s options. `port` is the head's GCS port (KubeRay
# also reads it for RAY_PORT, the workers' --address and wait-gcs-ready); gcs-server-port is Ray's older name.
TO_SETTING = SETTING_OF_OPTION
# Switches that turn a setting of ours off: with in-tree autoscaling the autoscaler runs in its own sidecar.
INVERTED = {"no-monitor": "monitor"}
# What seedcore-boot does anyway: --block always, --include-dashboard=true always (the head's health checks
# and its Serve deploy need the dashboard), --log-color=false always (Ray's output is a pipe to us).
ALWAYS = {"block": "true", "include-dashboard": "true", "log-color": "false"}
# What we cannot honour, and what to do instead.
REFUSED = {"worker-port-list": "give the range as min-worker-port and max-worker-port instead"}

# Every other `ray start` option of Ray 2.20.0 passes through as an extra argument (ray_args), as it would
# reach `ray start`; the unit tests compare this list with Ray's own click command.
PASS_THROUGH = {
    "node-name", "redis-shard-ports", "redis-max-memory", "plasma-directory", "autoscaling-config",
    "no-redirect-output", "plasma-store-socket-name", "raylet-socket-name", "storage", "system-config",
    "enable-object-reconstruction", "tracing-startup-hook", "ray-debugger-external", "disable-usage-stats",
    "labels", "log-style", "verbose",
}
SWITCHES = {"head", "block", "no-monitor", "no-redirect-output", "enable-object-reconstruction",
            "ray-debugger-external", "disable-usage-stats"}

# Variables KubeRay v1.1 sets in every Ray container (setContainerEnvVars) whether or not the user wants them.
# They are the platform's, not the user's: a head-only one on a worker (or the reverse) is not worth a warning.
INJECTED = {"RAY_ADDRESS", "RAY_PORT", "REDIS_PASSWORD", "RAY_external_storage_namespace",
            "RAY_gcs_rpc_server_reconnect_timeout_s", "FQ_RAY_IP", "RAY_IP"}


@dataclass
class Pod:
    """What the KubeRay pod asks for: the role, raw setting values (parsed by settings like any other
    source), the flag each came from (for messages), and lines to log at start."""
    role: str
    values: Dict[str, object] = field(default_factory=dict)
    flags: Dict[str, str] = field(default_factory=dict)  # setting -> the --flag it came from
    crd: Optional[str] = None
    notes: List[str] = field(default_factory=list)

    @property
    def rayservice(self):
        return self.crd == "RayService"

    def where(self, name):
        """The source of a setting's value, for messages: kuberay (--num-cpus in KUBERAY_GEN_RAY_START_CMD)."""
        return f"{SOURCE} ({self.flags[name]})" if name in self.flags else SOURCE


def split(text, env):
    """The words of a shell command line as bash would see them, with $NAME and ${NAME} expanded from env
    outside single quotes (unset expands to nothing, as in bash). Command substitution is refused: KubeRay
    means the string for a shell, and we run no shell."""
    words, word, have, i, quote = [], [], False, 0, None
    while i < len(text):
        c = text[i]
        if quote == "'":
            if c == "'":
                quote = None
            else:
                word.append(c)
            i += 1
            continue
        if c == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            if quote == '"' and nxt not in '$`"\\\n':
                word.append(c)
            elif nxt != "\n":
                word.append(nxt)
            i += 2
            have = True
            continue
        if c == "$" or c == "`":
            if c == "`" or text.startswith("$(", i):
                raise usage_error(f"{ENV} holds a command substitution ({text[i:i + 20]}...), which seedcore-boot "
                                  "does not run", "put the value itself in rayStartParams, or an environment "
                                  "variable of the container ($NAME)")
            m = re.match(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))", text[i:])
            if m:
                word.append(env.get(m.group(1) or m.group(2), ""))
                i += m.end()
                have = True
                continue
        if quote == '"':
            if c == '"':
                quote = None
            else:
                word.append(c)
            i += 1
            continue
        if c in "'\"":
            quote, have = c, True
        elif c.isspace():
            if have or word:
                words.append("".join(word))
            word, have = [], False
        elif c in ";&|<>":
            raise usage_error(f"{ENV} is not a single `ray start` command (it has {c!r})",
                              "keep shell operators out of rayStartParams")
        else:
            word.append(c)
        i += 1
    if quote:
        raise usage_error(f"{ENV} has an unterminated {quote} quote", "check the quoting in rayStartParams")
    if have or word:
        words.append("".join(word))
    return words


def parse(text, env):
    """{key: value} of the generated command's flags and whether it starts a head; usage errors otherwise."""
    words = split(text, env)
    if words[:2] != ["ray", "start"]:
        raise usage_error(f"{ENV} does not start with `ray start`: {text[:60]!r}",
                          "this is not a command KubeRay generated; unset it outside KubeRay")
    flags = {}
    for word in words[2:]:
        if not word.startswith("--"):
            raise usage_error(f"{ENV} has {word!r} where a --flag was expected",
                              "give every rayStartParams entry as key: value")
        key, eq, value = word[2:].partition("=")
        if key in flags:
            raise usage_error(f"{ENV} gives --{key} twice", "keep one rayStartParams entry for it")
        flags[key] = value if eq else "true"
    return flags


def pod(env, role=None, parent_argv=None):
    """The KubeRay pod this process runs in, or None outside KubeRay.

    role: the subcommand being run ("head" or "worker"), checked against the generated command; with it,
    the parent process is checked too (parent_argv: its argv, read from /proc when not given)."""
    text = env.get(ENV, "")
    if not text.strip():
        return None
    if role is not None:
        argv = parent_argv if parent_argv is not None else _parent_argv()
        if rewritten(text, argv):
            raise CommandRewritten(f"KubeRay replaced this container's command with `bash -lc \"seedcore-boot ... && "
                                   "ulimit -n 65536; ray start ...\"`: an unsupervised `ray start` would run after "
                                   "seedcore-boot exits",
                                   f"add the annotation {ANNOTATION} to the RayCluster's (or RayService's) metadata",
                                   EXIT_USAGE)
    flags = parse(text, env)
    found = Pod("head" if flags.pop("head", None) == "true" else "worker")
    if role is not None and role != found.role:
        raise usage_error(f"this is a KubeRay {found.role} pod ({ENV} starts a {found.role}) but the command is "
                          f"`seedcore-boot {role}`", f"run `seedcore-boot {found.role}` in this group's container")
    passed = []
    for key, value in flags.items():
        if key in TO_SETTING:
            name = TO_SETTING[key]
            if name in found.values and found.values[name] != value:
                raise usage_error(f"{ENV} gives {name} twice, differently: {found.values[name]} ({found.flags[name]}) "
                                  f"and {value} (--{key})", "keep one of them in rayStartParams")
            found.values[name], found.flags[name] = value, f"--{key} in {ENV}"
        elif key in INVERTED:
            found.values[INVERTED[key]], found.flags[INVERTED[key]] = _not(key, value), f"--{key} in {ENV}"
        elif key in ALWAYS:
            if value.lower() != ALWAYS[key]:
                raise usage_error(f"{ENV} asks for --{key}={value}, which seedcore-boot cannot honour: it always "
                                  f"runs ray start --{key}={ALWAYS[key]}", f"remove {key} from rayStartParams")
        elif key in REFUSED:
            raise usage_error(f"{ENV} asks for --{key}, which seedcore-boot cannot honour", REFUSED[key])
        elif key in PASS_THROUGH:
            passed.append(f"--{key}" if key in SWITCHES and value == "true" else f"--{key}={value}")
        else:
            raise usage_error(f"{ENV} has --{key}, which is no `ray start` option of Ray 2.20",
                              f"remove {key} from rayStartParams")
    if passed:
        found.values["ray_args"], found.flags["ray_args"] = tuple(passed), f"flags of {ENV} passed on to ray start"
    if found.role == "head":
        found.crd = _crd(env.get(EXTRA_TAGS, ""))
        if found.rayservice:
            found.values["serve"], found.flags["serve"] = "false", f"a RayService head: {EXTRA_TAGS} says kuberay_crd=RayService"
            found.notes.append("this head belongs to a RayService: KubeRay deploys its serveConfigV2 once the head "
                               "is Ready, so seedcore-boot deploys no Serve application of its own and does not "
                               "wait for Serve")
    return found


def _not(key, value):
    if value.lower() not in ("true", "false"):
        raise usage_error(f"{ENV} has --{key}={value}", f'give {key} as "true" or "false"')
    return "false" if value.lower() == "true" else "true"


def _crd(tags):
    """kuberay_crd from RAY_USAGE_STATS_EXTRA_TAGS (`k=v;k=v`), which KubeRay sets on the head only."""
    for item in tags.split(";"):
        key, _, value = item.partition("=")
        if key.strip() == "kuberay_crd":
            return value.strip()
    return None


class CommandRewritten(BootError):
    """We run as the first half of KubeRay's `bash -lc "<ours> && ulimit -n 65536; <ray start ...>"`.

    Exiting 2 would not stop the second half: `;` runs it whatever our exit code (measured in the Ray image:
    the unsupervised `ray start --head` came up after our exit 2). A non-interactive bash abandons its script
    only when it got SIGINT while its child died of SIGINT (then it exits 130 and runs nothing more; measured
    the same way, for exit codes and other signals it went on). So after the one line, end() does that."""

    def end(self):
        os.kill(os.getppid(), signal.SIGINT)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)


def rewritten(text, parent_argv):
    """Whether our parent is KubeRay's rewrite of the container command: bash running
    `<our command> && ulimit -n 65536; <the generated ray start>` (pod.go BuildPod, annotation missing)."""
    if not parent_argv or not os.path.basename(parent_argv[0]).endswith("bash"):
        return False
    script = parent_argv[-1]
    # v1.1-v1.6 write `ulimit -n 65536;`, v1.7 `ulimit -n ${RAY_START_ULIMIT_OPEN_FILES:-65536};`; v1.4+ run
    # `bash -c` unless the operator sets ENABLE_LOGIN_SHELL.
    return re.search(r"ulimit -n \S+;", script) is not None and script.rstrip().endswith(text.strip())


def _parent_argv():
    try:
        with open(f"/proc/{os.getppid()}/cmdline", "rb") as fh:
            return [a.decode("utf-8", "replace") for a in fh.read().split(b"\0") if a]
    except OSError:
        return []
