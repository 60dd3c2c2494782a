"""Tails of Ray's own logs, shown whenever a node fails, so the cause is on screen and not in a dir."""

import os

_FILES = ("gcs_server.out", "gcs_server.err", "raylet.out", "raylet.err", "dashboard.log", "dashboard.err",
          "dashboard_agent.log", "runtime_env_agent.log", "monitor.log", "ray_client_server.err",
          "serve/controller_*.log")


def logs_dir(temp_dir):
    return os.path.join(temp_dir, "session_latest", "logs")


def tail(path, lines):
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return []
    # raylet.out's periodic state dumps bury the lines that say what went wrong
    keep = [l[:400] for l in text.splitlines() if l.strip() and "[state-dump]" not in l]
    return keep[-lines:] if lines > 0 else []  # keep[-0:] would be every line


def tails(temp_dir, since=0.0, lines=15, names=_FILES):
    """[(path, [line])] for each non-empty log of the latest session written since `since` (epoch s)."""
    import glob

    base = logs_dir(temp_dir)
    out = []
    for name in names:
        for path in sorted(glob.glob(os.path.join(base, name))):
            try:
                if os.path.getmtime(path) < since:
                    continue  # an earlier run's log: it would only mislead
            except OSError:
                continue
            got = tail(path, lines)
            if got:
                out.append((path, got))
    return out
