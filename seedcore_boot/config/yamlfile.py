"""Files users write, read as text and YAML: the settings file (settings.py) and a Serve config (serve/), each
problem one usage line naming the file, the position and the fix."""

import codecs

import yaml

from ..errors import usage_error


def read_yaml(path, what, hint, loader=yaml.SafeLoader):
    """Parsed YAML of `path`; an unreadable file or a syntax error is one usage line with its position."""
    try:
        with open(path, "rb") as fh:
            text = decode_text(fh.read(), f"{what} {path}")
    except OSError as exc:
        raise usage_error(f"cannot read {what} {path}: {exc.strerror}", hint) from None
    try:
        return yaml.load(text, Loader=loader)
    except RecursionError:  # thousands of nested [ or {: PyYAML's composer recurses
        raise usage_error(f"{path}: YAML nested too deeply", "fix the file's structure") from None
    except (ValueError, TypeError, AttributeError) as exc:
        # PyYAML's SafeLoader constructors let these out for scalars that match a tag's pattern but are no value
        # of it: `2024-13-45` (ValueError from datetime.date), `!!float x`, `!!timestamp x` (AttributeError).
        raise usage_error(f"{path}: a YAML value that is not what its form says ({exc})",
                          "quote it to make it a string, or fix the date or number") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise usage_error(f"{path}: YAML error at {where}: {problem}", "fix the syntax at that line") from None


_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def decode_text(data, what):
    """A file's bytes as text: UTF-8, or UTF-8/16/32 with a byte order mark (Windows editors and PowerShell's
    `>` write UTF-16 with one; YAML allows all of them). Anything else (a Latin-1 comment) is one usage line
    with the offending byte's line."""
    encoding = next((enc for bom, enc in _BOMS if data.startswith(bom)), "utf-8")
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1 if encoding == "utf-8" else None
        where = f" (byte 0x{data[exc.start]:02x} on line {line})" if line else ""
        raise usage_error(f"{what} is not {encoding.upper()} text{where}",
                          "save it as UTF-8 (in PowerShell: Out-File -Encoding utf8)") from None
    if "\0" in text:
        raise usage_error(f"{what} holds NUL characters: not a text file, or UTF-16 without a byte order mark",
                          "save it as UTF-8 (in PowerShell: Out-File -Encoding utf8)")
    return text
