"""One line per event on stdout, with the phase and the time since start; or JSON lines for log shippers."""

import json
import sys
import time


class Log:
    def __init__(self, fmt="text", stream=None, start=None, secrets=()):
        self.fmt = fmt
        self.secrets = [x for x in secrets if x]  # never printed, whatever line carries them (Ray's own too)
        self.stream = stream or sys.stdout
        self.start = start if start is not None else time.monotonic()
        self.colour = self.fmt == "text" and hasattr(self.stream, "isatty") and self.stream.isatty()

    def elapsed(self):
        return time.monotonic() - self.start

    def _emit(self, record, text):
        try:
            out = json.dumps(record, default=str) if self.fmt == "json" else text
            self.stream.write(redact(out, self.secrets) + "\n")
            self.stream.flush()
        except (BrokenPipeError, ValueError):
            pass  # our stdout is gone (closed pipe): keep supervising rather than die mid-stop

    def event(self, phase, msg, level="info", **fields):
        t = self.elapsed()
        prefix = f"seedcore-boot [{phase} +{t:.1f}s]"
        if self.colour and level in ("error", "warning"):
            prefix = ("\033[31m" if level == "error" else "\033[33m") + prefix + "\033[0m"
        self._emit({"ts": time.time(), "elapsed_s": round(t, 3), "phase": phase, "level": level,
                    "msg": msg, **fields}, f"{prefix} {msg}")

    def warn(self, phase, msg, **fields):
        self.event(phase, msg, level="warning", **fields)

    def error(self, phase, msg, **fields):
        self.event(phase, msg, level="error", **fields)

    def ray(self, line):
        """A line of the child's own output, passed through."""
        self._emit({"ts": time.time(), "source": "ray", "line": line}, f"ray | {line}")

    def block(self, title, lines):
        """Several lines of context (log tails), framed so they read as one unit."""
        self._emit({"ts": time.time(), "source": "log_tail", "title": title, "lines": lines},
                   "\n".join([f"----- {title} -----", *lines, "-" * (len(title) + 12)]))


def redact(text, secrets):
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def ms(seconds):
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"
