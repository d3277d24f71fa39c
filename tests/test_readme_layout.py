"""The README's "Layout" map and "Where to change what" table name only real paths.

A newcomer follows these to the room for a change; a file moved or split without
updating them sends people to nothing. Paths come from the map's first column
and from every backticked path in the section; a relative one such as
``transports/base.py`` is read against a full path on the same line that holds
its first folder (``pipeline/sending/transports/``), and ``<name>`` is a
placeholder that at least one file must fill.
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

_BACKTICKED = re.compile(r"`([^`\s]+)`")
# What counts as a path: a folder (ends in /) or a file with an extension.
_PATHLIKE = re.compile(r"^[\w.<>/-]*(/|\.(py|mjml|txt|toml|csv|html|md))$")


def layout_section(readme: str) -> str:
    """The text of ``## Layout`` up to the next ``## `` heading."""
    start = readme.index("\n## Layout\n")
    end = readme.find("\n## ", start + 1)
    return readme[start : end if end >= 0 else len(readme)]


def _map_paths(section: str) -> list[str]:
    """The first column of the fenced map: ``pipeline/content/      what ...``."""
    fenced = section.split("```")[1]
    found: list[str] = []
    for line in fenced.splitlines():
        if not line or line[0].isspace():
            continue  # a wrapped description
        # the first path, then any more after commas: "articles/, templates/, ..."
        column = re.match(r"[^\s,]+(?:,\s*[^\s,]+)*", line)
        assert column is not None
        found.extend(part.strip() for part in column.group().split(","))
    return found


def _exists(path: str, base: Path) -> bool:
    if "<" in path:  # transports/<name>_settings.py: some file must fit the pattern
        pattern = re.sub(r"<[^>]+>", "*", path.rstrip("/"))
        return any(base.glob(pattern))
    return (base / path).exists()


def missing_paths(section: str, repo: Path) -> list[str]:
    """Every path the section names that is not in ``repo``, as ``line: path``."""
    missing = [path for path in _map_paths(section) if not _exists(path, repo)]
    for line in section.splitlines():
        tokens = [t for t in _BACKTICKED.findall(line) if _PATHLIKE.match(t)]
        full = [t for t in tokens if _exists(t, repo)]
        for token in tokens:
            if token in full:
                continue
            first = token.split("/")[0]
            bases = [
                repo.joinpath(*parts[: parts.index(first)])
                for parts in (Path(f).parts for f in full)
                if first in parts
            ]
            if not any(_exists(token, base) for base in bases):
                missing.append(f"{line[:60]}...: {token}")
    return missing


def test_every_path_in_the_readme_layout_exists() -> None:
    section = layout_section((REPO / "README.md").read_text(encoding="utf-8"))
    assert len(_map_paths(section)) >= 15  # the map was found and read
    assert missing_paths(section, REPO) == []


def test_a_moved_file_is_caught(tmp_path: Path) -> None:
    (tmp_path / "pipeline" / "sending" / "transports").mkdir(parents=True)
    (tmp_path / "pipeline" / "sending" / "transports" / "base.py").touch()
    (tmp_path / "pipeline" / "sending" / "transports" / "smtp_settings.py").touch()
    section = (
        "\n## Layout\n\n```\npipeline/sending/  runner\npipeline/gone/     moved away\n```\n\n"
        "| x | `pipeline/sending/transports/` (`transports/base.py`, `transports/http.py`,"
        " `transports/<name>_settings.py`) |\n"
        "| y | `pipeline/content/articles.py` |\n"
    )
    missing = missing_paths(layout_section(section), tmp_path)
    assert [m.rsplit(": ", 1)[-1] for m in missing] == [
        "pipeline/gone/",
        "transports/http.py",
        "pipeline/content/articles.py",
    ]
