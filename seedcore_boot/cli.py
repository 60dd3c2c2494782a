"""The click layer: parse, call the flows, turn BootError into one line and an exit code. Nothing else."""

import json
import os
import sys

import click

from . import __version__
from .config import fields, settings as settings_mod
from .config.addresses import host_port, parse_head_address
from .errors import BootError, usage_error
from .host import leftovers, ports
from .log import Log
from .node import dryrun, flow, plan as plans
from .tls import tlscmd

# Flag spellings other than --<setting-name>; the issue's `--port` for the GCS among them.
_ALIASES = {"gcs_port": ("--port",), "head_address": ("--address",)}
_SKIP = {"ray_args", "serve_config"}  # ray_args come after `--`; serve_config has its own option


def _env_epilog():
    lines = ["\b", "Environment (flags win over environment, environment over KubeRay's generated command and "
                   "the --config file):",
             f"  {fields.CONFIG_ENV}  settings file"]
    for name in fields.FIELDS:
        lines.append(f"  {' / '.join(fields.env_names(name))}  ->  {name}")
    lines.append("RAY_DISABLE_METRICS_SERVER, RAY_METRICS_EXPORT_PORT and RAY_DASHBOARD_METRICS_PORT are not "
                 "read by Ray itself; seedcore-boot translates them (docs/running.md, 'Metrics variables').")
    return "\n".join(lines)


def settings_options(role=None):
    """One click option per setting that applies to `role`, all defaulting to None (= not given)."""

    def decorate(fn):
        for name in reversed(list(fields.FIELDS)):
            meta = fields.FIELDS[name].metadata
            if name in _SKIP or (role and role not in meta["roles"]):
                continue
            flag = "--" + name.replace("_", "-")
            default = fields.FIELDS[name].default
            help_text = meta["help"] + (f" [default: {default}]" if default not in (None, ()) else "")
            if meta["kind"] == "bool":
                fn = click.option(f"{flag}/--no-{name.replace('_', '-')}", name, default=None,
                                  help=help_text)(fn)
            else:
                fn = click.option(flag, *_ALIASES.get(name, ()), name, default=None, metavar=_metavar(meta),
                                  help=help_text)(fn)
        fn = click.option("--config", "config_path", default=None, metavar="FILE",
                          help=f"YAML settings file (also ${fields.CONFIG_ENV})")(fn)
        return fn

    return decorate


def _metavar(meta):
    return {"port": "PORT", "seconds": "SECONDS", "count": "N", "ip": "IP", "host": "HOST",
            "abspath": "PATH", "bytes": "BYTES"}.get(meta["kind"], "TEXT")


def _resolve(config_path, opts, ray_args=(), role=None):
    flags = {k: v for k, v in opts.items() if v is not None and k in fields.FIELDS}
    if ray_args:
        flags["ray_args"] = tuple(ray_args)
    return settings_mod.resolve(flags, os.environ, config_path, role=role)


class _Group(click.Group):
    def list_commands(self, ctx):
        return list(self.commands)  # the order they were written in, head first


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="seedcore-boot")
def cli():
    """Boot Ray 2.20.0 heads and workers that come up whole, or fail loudly with the fix."""


@cli.command(epilog=_env_epilog(), context_settings={"ignore_unknown_options": False})
@settings_options("head")
@click.option("--serve-config", "serve_config", default=None, metavar="FILE",
              help="Serve config in Ray's schema (as for `serve deploy`)")
@click.option("--dry-run", is_flag=True, help="print the ray start argv and environment additions, and run every "
              "check that starts nothing (host, dirs, node address, TLS files, ports); start nothing")
@click.argument("ray_args", nargs=-1, type=click.UNPROCESSED, metavar="[-- RAY_START_ARGS...]")
def head(config_path, dry_run, ray_args, **opts):
    """Start a Ray head in the foreground: preflight, start, health, Serve, ready; stop on SIGTERM."""
    return _run_node("head", config_path, opts, ray_args, dry_run)


def _run_node(role, config_path, opts, ray_args, dry_run, address=None, wait_first=None):
    from .ray import raycmd

    resolved = _resolve(config_path, opts, ray_args, role)
    try:
        ray = raycmd.find_ray()
    except BootError:
        if not dry_run:
            raise
        ray = "ray"
    plan = plans.make_plan(resolved, role, address=address, ray=ray)
    if dry_run:
        click.echo(plans.dry_run_text(plan))
        dryrun.checks(plan, click.echo)
        return 0
    log = Log(plan.settings.log_format, secrets=plan.secrets)
    return flow.run(plan, log, os.environ, wait_first=wait_first)


@cli.command(epilog=_env_epilog())
@settings_options("worker")
@click.option("--dry-run", is_flag=True, help="print the ray start argv and environment additions, and run every "
              "check that starts nothing (host, dirs, node address, TLS files, ports); start nothing")
@click.argument("ray_args", nargs=-1, type=click.UNPROCESSED, metavar="[-- RAY_START_ARGS...]")
def worker(config_path, dry_run, ray_args, **opts):
    """Join a head: wait until its GCS is healthy, preflight, start, stay up; exit 1 when the head is lost."""
    from .node import headwait

    settings = _resolve(config_path, opts, ray_args, "worker").settings
    if not settings.head_address:
        raise usage_error("no head address", "give --address HOST:PORT (or SEEDCORE_HEAD_ADDRESS)")
    host, port = parse_head_address(settings.head_address)
    return _run_node("worker", config_path, opts, ray_args, dry_run, address=host_port(host, port),
                     wait_first=headwait.before_start(settings, Log(settings.log_format), os.environ))


@cli.command("check-ports", epilog=_env_epilog())
@settings_options()
@click.option("--role", type=click.Choice(["head", "worker"]), default="head", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@click.option("--firewall", is_flag=True, help="print the ports other machines must reach on this node, to copy "
              "into a firewall; probe nothing")
def check_ports(config_path, role, as_json, firewall, **opts):
    """Run only the port preflight: exit 0 when every planned port is free, 1 otherwise."""
    resolved = _resolve(config_path, opts)
    plan = plans.make_plan(resolved, role, host_checks=False)
    if firewall:
        from .host import firewall as firewall_mod

        click.echo(firewall_mod.text(plan.ports, plan.settings, role))
        return 0
    statuses = ports.check(plan.ports)
    if as_json:
        click.echo(json.dumps({"role": role, "free": all(s.free for s in statuses),
                               "ports": [s.as_dict() for s in statuses]}, indent=2))
    else:
        for note in plan.notes:
            click.echo(f"note: {note}")
        for st in statuses:
            p = st.planned
            verdict = "free" if st.free else f"BUSY: {ports.busy_message(st)}"
            click.echo(f"{p.name:<22} {host_port(p.host or '*', p.port):<12} {verdict}")
    return 0 if all(s.free for s in statuses) else 1


@cli.group()
def config():
    """Inspect the resolved settings."""


@config.command("show", epilog=_env_epilog())
@settings_options()
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def config_show(config_path, as_json, **opts):
    """Print every setting, its value and where it came from."""
    resolved = _resolve(config_path, opts)
    rows = settings_mod.describe(resolved)
    if as_json:
        click.echo(json.dumps({n: {"value": v, "source": s} for n, v, s in rows}, indent=2, default=str))
    else:
        width = max(len(n) for n, _, _ in rows)
        for name, value, source in rows:
            shown = " ".join(value) if isinstance(value, tuple) else value
            click.echo(f"{name:<{width}}  {shown!s:<24}  {source}")
    return 0


@cli.command(epilog=_env_epilog())
@settings_options()
@click.option("--live", "mode", flag_value="live", help="liveness only: the supervisor runs and the GCS (head) "
              "and raylet answer; for a Kubernetes livenessProbe")
@click.option("--ready", "mode", flag_value="ready", default=True, help="readiness (the default): endpoints, "
              "the ready file, Serve applications RUNNING (not with --no-serve); for HEALTHCHECK and "
              "readinessProbe (a head's under Kubernetes: --no-serve)")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def status(config_path, mode, as_json, **opts):
    """Probe this machine's node (head or worker): exit 0 when it is ready (or alive, --live), 1 when not."""
    from .node import status as status_mod

    report = status_mod.check(_resolve(config_path, opts).settings, mode)
    click.echo(json.dumps(report.as_dict(), indent=2) if as_json else "\n".join(report.lines()))
    return 0 if report.ok else 1


@cli.command(epilog=_env_epilog())
@settings_options()
@click.option("--timeout", type=float, default=None,
              help="seconds to wait for each node to exit [default: 30, or for a worker drain_timeout + "
                   "grace_period + 5 if longer]")
def stop(config_path, timeout, **opts):
    """Stop the node(s) seedcore-boot started under this temp dir, also those whose supervisor died; never
    touches other Ray processes."""
    return leftovers.stop(_resolve(config_path, opts).settings, timeout, click.echo)


@cli.group("serve")
def serve_group():
    """Deploy to, or inspect, the Serve applications of a running head."""


def _dashboard(address, settings):
    """--address > RAY_ADDRESS when it is the dashboard's http URL (as Ray's own CLIs take it) > settings."""
    env_address = os.environ.get("RAY_ADDRESS", "")
    if address:
        return address
    if env_address.startswith(("http://", "https://")):
        return env_address
    return flow.dashboard_url(settings)


@serve_group.command("deploy", epilog=_env_epilog())
@click.argument("config_file", metavar="FILE")
@settings_options("head")
@click.option("--address", default=None, metavar="URL", help="dashboard URL (default: RAY_ADDRESS if it is "
              "an http URL, else the settings' dashboard host and port)")
@click.option("--timeout", type=float, default=120.0, show_default=True, help="seconds to wait for RUNNING")
def serve_deploy(config_file, config_path, address, timeout, **opts):
    """Deploy FILE (Ray's Serve schema) to a running head and wait until every app answers. Idempotent."""
    from .serve import deploy as serve

    s = _resolve(config_path, opts).settings
    return serve.deploy_running(_dashboard(address, s), config_file, s, Log(s.log_format), timeout)


@serve_group.command("status", epilog=_env_epilog())
@settings_options("head")
@click.option("--address", default=None, metavar="URL", help="dashboard URL (as for serve deploy)")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def serve_status(config_path, address, as_json, **opts):
    """Print each Serve application's status: exit 0 when all are RUNNING, 1 otherwise."""
    from .serve import appstatus, deploy as serve

    s = _resolve(config_path, opts).settings
    url = _dashboard(address, s)
    details, err = serve.instance(url)
    if details is None:
        raise BootError(f"no Serve REST API at {url}: {err}", "start the head, or give --address")
    report = appstatus.report(details)
    click.echo(json.dumps(report, indent=2) if as_json else "\n".join(appstatus.text_lines(details)))
    return 0 if report["healthy"] else 1


@cli.group("tls")
def tls_group():
    """Mutual TLS (docs/security.md): the cluster's CA, certificates for drivers, a driver's variables."""


@tls_group.command("init")
@click.argument("directory", metavar="DIR")
@click.option("--days", type=click.IntRange(1, tlscmd.MAX_DAYS), default=tlscmd.CA_DAYS, show_default=True,
              help="how long the CA is valid")
def tls_init(directory, days):
    """Make the cluster's CA in DIR: ca.crt and ca.key (mode 600). Never replaces one."""
    return tlscmd.init(directory, days, click.echo)


@tls_group.command("issue", epilog=_env_epilog())
@click.argument("out_dir", metavar="OUT_DIR")
@click.option("--ca-dir", default=None, metavar="DIR", help="the CA made by `tls init` [default: the tls_ca_cert "
              "and tls_ca_key settings, from the environment or $SEEDCORE_BOOT_CONFIG's file]")
@click.option("--name", default="client", show_default=True, help="OUT_DIR/NAME.crt and NAME.key; also a name in it")
@click.option("--dns-name", "dns_names", multiple=True, metavar="NAME", help="another name (or address) in it")
@click.option("--this-host", is_flag=True, help="also this host's name and addresses: a node's certificate made "
              "before it starts (a Kubernetes init container)")
@click.option("--days", type=click.IntRange(1, tlscmd.MAX_DAYS), default=tlscmd.tls.ISSUED_DAYS, show_default=True)
def tls_issue(out_dir, ca_dir, name, dns_names, this_host, days):
    """Issue a certificate for a driver or ray:// client and print the variables that give it to Ray."""
    return tlscmd.issue_client(out_dir, name, ca_dir, _resolve(None, {}).settings, dns_names, days, click.echo,
                               this_host)


@tls_group.command("env", epilog=_env_epilog())
@settings_options()
def tls_env(config_path, **opts):
    """Print the TLS variables of the node running here, for a driver or `ray status` on it:
    eval "$(seedcore-boot tls env)"."""
    for var, value in tlscmd.running_env(_resolve(config_path, opts).settings).items():
        click.echo(f"export {var}={value}")
    return 0


def main(argv=None):
    try:
        code = cli.main(args=argv, prog_name="seedcore-boot", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("seedcore-boot: aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except BootError as exc:
        click.echo(f"seedcore-boot: error: {exc}", err=True)
        if hasattr(exc, "end"):  # an error that an exit code alone would not end (kuberay.CommandRewritten)
            sys.stderr.flush()
            exc.end()
        sys.exit(exc.exit_code)
    sys.exit(code or 0)
