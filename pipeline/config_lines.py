"""Where a setting sits in ``newsletter.toml``: ``path:line`` for one-line errors.

TOML parsers keep no positions, so the line is found by reading the file: the
``[section]`` heading (dotted for nested tables), then the key below it. A
setting that is not written in the file (a default, or one from the
environment) gives the bare path.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path


def setting_line(path: Path, loc: Sequence[int | str]) -> str:
    """``path:line`` of the setting at ``loc`` (("schedule", "cron")), else ``path``."""
    parts = [str(part) for part in loc]
    if not parts:
        return str(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return str(path)
    # The longest dotted table heading that names a prefix of loc; the next part is the key.
    for cut in range(len(parts), 0, -1):
        names = r"\s*\.\s*".join(rf"\"?{re.escape(name)}\"?" for name in parts[:cut])
        heading = re.compile(rf"\s*\[\s*{names}\s*\]\s*(#.*)?$")
        for number, line in enumerate(lines, start=1):
            if not heading.match(line):
                continue
            if cut == len(parts):
                return f"{path}:{number}"
            key = re.compile(rf"\s*\"?{re.escape(parts[cut])}\"?\s*=")
            for offset, below in enumerate(lines[number:], start=number + 1):
                if below.lstrip().startswith("["):
                    break
                if key.match(below):
                    return f"{path}:{offset}"
            return str(path)  # not written (a missing required key): no line to point at
    # A top-level key (articles_dir = ...), before any table.
    key = re.compile(rf"\s*{re.escape(parts[0])}\s*=")
    for number, line in enumerate(lines, start=1):
        if line.lstrip().startswith("["):
            break
        if key.match(line):
            return f"{path}:{number}"
    return str(path)
