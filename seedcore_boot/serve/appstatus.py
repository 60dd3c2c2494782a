"""What `seedcore-boot serve status` reports of a head's Serve applications, from the REST API's answer
(deploy.instance): healthy when there is at least one application and every one is RUNNING. The answer comes
from whatever listens on the dashboard's port, so every field may be missing or null (deploy.mappings)."""

from .deploy import app_message, mappings


def report(details):
    """What --json prints: {"healthy", "applications": {name: {status, route_prefix, message, deployments}}}."""
    apps = mappings(details, "applications")
    return {"healthy": bool(apps) and all(a.get("status") == "RUNNING" for a in apps.values()),
            "applications": {
                name: {"status": a.get("status"), "route_prefix": a.get("route_prefix"), "message": a.get("message"),
                       "deployments": {d: dep.get("status") for d, dep in mappings(a, "deployments").items()}}
                for name, a in apps.items()}}


def text_lines(details):
    """A line per application: name, status, route prefix, and why when it is not RUNNING."""
    apps = mappings(details, "applications")
    if not apps:
        return ["no Serve applications"]
    return [f"{name:<16} {a.get('status')!s:<14} {a.get('route_prefix') or '-'!s:<12} "
            f"{app_message(a) if a.get('status') != 'RUNNING' else ''}" for name, a in apps.items()]
