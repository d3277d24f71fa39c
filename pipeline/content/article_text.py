"""An article file's text: decoded, its ``---`` block split off, its YAML parsed.

Keeps the line of every top-level key, so a problem found later in a field can
be reported at that key's line; YAML and encoding mistakes become
:class:`~pipeline.errors.Problem` records here, never exceptions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import yaml

from pipeline.content.front_matter import _shown
from pipeline.errors import Problem

_DELIMITER = re.compile(r"^---[ \t]*$", re.MULTILINE)


class _Loader(yaml.SafeLoader):
    """A SafeLoader that leaves an impossible date (``2026-02-30``) as text.

    PyYAML raises a bare ValueError for those; kept as text, the field's own
    check reports it at the key's line like any other bad value.
    """

    def construct_yaml_timestamp(self, node: yaml.ScalarNode) -> date | str:  # type: ignore[override]
        try:
            return super().construct_yaml_timestamp(node)
        except (ValueError, OverflowError):
            return self.construct_scalar(node)


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_yaml_timestamp)


@dataclass(frozen=True)
class _Source:
    """A file's text split into front matter and body, with line lookup."""

    text: str
    yaml_text: str
    yaml_offset: int  # where yaml_text starts in text
    body: str

    def line_at(self, yaml_index: int) -> int:
        """The 1-based file line of a character index into ``yaml_text``."""
        return self.text.count("\n", 0, self.yaml_offset + yaml_index) + 1


def _split(text: str) -> _Source | str:
    """Split off the front matter, or say (as a message) why there is none."""
    first_end = text.find("\n")
    first_line = text if first_end < 0 else text[:first_end]
    if first_line.rstrip(" \t") != "---":
        return "no front matter: start the file with a --- block"
    start = first_end + 1
    closing = _DELIMITER.search(text, start) if first_end >= 0 else None
    if closing is None:
        return "front matter is not closed: add a --- line after it"
    body_start = text.find("\n", closing.end())
    body = "" if body_start < 0 else text[body_start + 1 :]
    return _Source(text, text[start : closing.start()], start, body)


def _decode(path: Path) -> tuple[str | None, Problem | None]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return None, Problem(path, 1, f"cannot read the file: {exc.strerror or exc}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        return None, Problem(path, line, "not UTF-8 text: save the file as UTF-8")
    # Universal newlines, as an editor shows them: line numbers then agree.
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    return text, None


def _yaml_problem(path: Path, source: _Source, exc: yaml.YAMLError) -> Problem:
    if isinstance(exc, yaml.reader.ReaderError):
        # PyYAML gives the offending character as its code point
        character = chr(exc.character) if isinstance(exc.character, int) else exc.character
        return Problem(
            path,
            source.line_at(exc.position),
            f"front matter contains a character YAML does not allow: {character!r}",
        )
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        line = source.line_at(mark.index) if mark is not None else 1
        message = f"broken YAML in front matter: {exc.problem or 'cannot parse'}"
        if exc.context and exc.context_mark is not None:
            context_line = source.line_at(exc.context_mark.index)
            if context_line != line:
                message += f" ({exc.context} at line {context_line})"
        return Problem(path, line, message)
    return Problem(path, 1, f"broken YAML in front matter: {exc}")


def _parse_yaml(path: Path, source: _Source) -> tuple[object, dict[str, int], list[Problem]]:
    """The front matter's data, the line of each top-level key, and any problems."""
    lines: dict[str, int] = {}
    problems: list[Problem] = []
    try:
        loader = _Loader(source.yaml_text)
        try:
            node = loader.get_single_node()
            if isinstance(node, yaml.MappingNode):
                # Read key lines before constructing: merge keys (<<) rewrite the node.
                for key_node, _value in node.value:
                    if not isinstance(key_node, yaml.ScalarNode):
                        continue
                    line = source.line_at(key_node.start_mark.index)
                    if key_node.value in lines:
                        first = lines[key_node.value]
                        problems.append(
                            Problem(
                                path,
                                line,
                                f"duplicate key {_shown(key_node.value)} (first at line {first})",
                            )
                        )
                    else:
                        lines[key_node.value] = line
            data: object = None if node is None else loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        return None, lines, [_yaml_problem(path, source, exc)]
    except RecursionError:
        return None, lines, [Problem(path, 1, "front matter is nested too deeply")]
    if data is None:
        data = {}
    if not isinstance(data, dict):
        line = source.line_at(node.start_mark.index) if node is not None else 1
        problems.append(Problem(path, line, "front matter must be `key: value` lines"))
    return data, lines, problems


def front_matter_line(path: Path, key: str) -> int:
    """The line of top-level ``key:`` in a file's front matter, or 1 if not found."""
    text, _problem = _decode(path)
    if text is None:
        return 1
    source = _split(text)
    if isinstance(source, str):
        return 1
    pattern = re.compile(rf"^[\"']?{re.escape(key)}[\"']?[ \t]*:", re.MULTILINE)
    match = pattern.search(source.yaml_text)
    return 1 if match is None else source.line_at(match.start())
