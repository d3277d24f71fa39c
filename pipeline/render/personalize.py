"""The per-recipient merge: ``%%name%%`` placeholders filled for one recipient.

A rendered issue is the same for everyone; what is personal (first name, unsubscribe
link) is left as placeholders. :class:`Personalizer` splits the issue once per campaign
and fills them in one pass per recipient, HTML-escaping values in the HTML part.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from pipeline.render.issue import RenderedIssue

#: Per-recipient values, written into a rendered issue as ``%%name%%``.
PLACEHOLDERS: Final = ("first_name", "unsubscribe_url")

_PLACEHOLDER_RE: Final = re.compile("%%(" + "|".join(PLACEHOLDERS) + ")%%")


def placeholder(name: str) -> str:
    """The token a template writes for the per-recipient value ``name``."""
    return f"%%{name}%%"


@dataclass(frozen=True)
class Personalization:
    """What is personal to one recipient. The caller applies the first-name fallback."""

    first_name: str
    unsubscribe_url: str

    def values(self) -> dict[str, str]:
        """The placeholder values, by placeholder name."""
        return {"first_name": self.first_name, "unsubscribe_url": self.unsubscribe_url}


class _Compiled:
    """A document split once into literal chunks and the placeholder names between them."""

    __slots__ = ("literals", "names")

    def __init__(self, document: str) -> None:
        pieces = _PLACEHOLDER_RE.split(document)
        self.literals: tuple[str, ...] = tuple(pieces[0::2])
        self.names: tuple[str, ...] = tuple(pieces[1::2])

    def merge(self, values: Mapping[str, str]) -> str:
        # One pass over precompiled pieces: a value that itself looks like a
        # placeholder is copied verbatim, never expanded again.
        out = [self.literals[0]]
        for name, literal in zip(self.names, self.literals[1:], strict=True):
            out.append(values[name])
            out.append(literal)
        return "".join(out)


class Personalizer:
    """Merges one recipient's values into a rendered issue; build once per campaign."""

    def __init__(self, issue: RenderedIssue) -> None:
        self.issue = issue
        self._html = _Compiled(issue.html)
        self._text = _Compiled(issue.text)
        self._html_names = frozenset(self._html.names)

    @staticmethod
    def _values(values: Mapping[str, str] | Personalization) -> Mapping[str, str]:
        return values.values() if isinstance(values, Personalization) else values

    def html(self, values: Mapping[str, str] | Personalization) -> str:
        """The HTML part for one recipient; values are HTML-escaped (quotes too).

        Raises ``KeyError`` when a placeholder in the issue has no value.
        """
        raw = self._values(values)
        escaped = {name: html.escape(raw[name], quote=True) for name in self._html_names}
        return self._html.merge(escaped)

    def text(self, values: Mapping[str, str] | Personalization) -> str:
        """The plain-text part for one recipient; values are inserted as they are."""
        return self._text.merge(self._values(values))
