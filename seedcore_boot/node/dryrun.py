"""`--dry-run`: after the plan (plan.dry_run_text), every check a start runs before Ray that starts nothing,
printed as the plan's `# ...` lines; a failure ends it as it ends the start."""

from ..config.addresses import parse_head_address
from ..host import nodeaddr
from ..tls import nodetls as tls
from . import flow as node
from .headwait import resolve as resolve_host


class DryLog:
    """Log's interface for --dry-run: each event a `# phase: message` line, like the rest of what it prints."""

    def __init__(self, echo):
        self.echo = echo

    def event(self, phase, msg, level="info", **_):
        self.echo(f"# {phase}: {msg}" if level == "info" else f"# {phase}: {level.upper()}: {msg}")

    def warn(self, phase, msg, **_):
        self.event(phase, msg, level="warning")

    def error(self, phase, msg, **_):
        self.event(phase, msg, level="error")


def checks(plan, echo):
    """--dry-run's checks: the ones a start runs before Ray that start nothing (the dirs it writes, the node's
    address, the TLS files, the ports), in the start's order; a failure raises as the start's would. Only the
    worker's wait for its head is left out: its address is checked towards the head when the head's name
    resolves now."""
    s, role, log = plan.settings, plan.role, DryLog(echo)
    node.local_checks(plan, log)
    node.preflight(plan, log)
    if plan.tls:
        log.event("tls", tls.check(plan.tls, s, role))
    if role == "worker":  # where the start checks it: once the head has answered
        host, port = parse_head_address(s.head_address)
        try:
            ip = resolve_host(host)
        except OSError as exc:
            log.event("network", f"node address: detected towards the head once {host!r} resolves (it does not "
                      f"now: {exc.strerror or exc})")
        else:
            nodeaddr.check_worker(s, ip, port, log)
