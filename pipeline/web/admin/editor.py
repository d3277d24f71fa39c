"""What the Write page does with a form before (and instead of) saving it: check it with
``newsletter check``'s own code, and render it as the email.

The check runs :func:`pipeline.cli.content.collect_problems` (exactly what
``check`` runs) over a throwaway copy of the articles folder holding the edited
file, so a save is refused for the same problems ``check`` would print, with the
same ``path:line: message`` (the path is the real file's), including those that
only show among the other files (a duplicate slug or part, a series gap), and
nothing touches the real folder until the text is clean. The same copy gives
the unsaved article and its neighbours to render the preview from.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pipeline.cli.content import collect_problems
from pipeline.config import Settings
from pipeline.content.articles import Article, load_articles
from pipeline.content.editing import EDITED
from pipeline.errors import Problem
from pipeline.newsletter import Newsletter
from pipeline.previews import preview_parts
from pipeline.render import RenderedIssue

#: The preview's frames: a phone and a desktop, each light and dark.
WIDTHS = ((375, "Phone"), (1280, "Desktop"))
SCHEMES = ("light", "dark")
_KEY = re.compile(r"^[\"']?([A-Za-z_][A-Za-z0-9_-]*)[\"']?[ \t]*:")
_DARK_QUERY = re.compile(r"\(\s*prefers-color-scheme\s*:\s*dark\s*\)")
_COLOR_SCHEME = re.compile(r"(color-scheme\s*:\s*|content=\")light dark")


@dataclass(frozen=True)
class Checked:
    """An edited file's text as ``check`` sees it among the folder's other files."""

    article: Article | None  # None when there are problems
    articles: tuple[Article, ...]  # the folder as it would be after the save
    problems: tuple[Problem, ...]  # those in this file, at the real path


def check_text(settings: Settings, file_name: str, text: str) -> Checked:
    """``check``'s verdict on ``articles/FILE_NAME`` if it held ``text``."""
    real = settings.articles_path / file_name
    with tempfile.TemporaryDirectory(prefix="newsletter-edit-") as folder:
        copy = Path(folder)
        if settings.articles_path.is_dir():
            for path in settings.articles_path.glob("*.md"):
                if path.name != file_name and not path.name.startswith("."):
                    shutil.copyfile(path, copy / path.name)
        candidate = copy / file_name
        candidate.write_text(text, encoding="utf-8")
        _count, found = collect_problems(settings.model_copy(update={"articles_dir": copy}))
        problems = tuple(Problem(real, p.line, p.message) for p in found if p.path == candidate)
        articles = load_articles(copy, settings.schedule.tz).articles
    article = next((a for a in articles if a.path == candidate), None)
    return Checked(None if problems else article, articles, problems)


def field_of(text: str, problem: Problem) -> str:
    """Which form field a problem belongs next to ("body", or "" for the whole form)."""
    lines = text.split("\n")
    if problem.line > 1 and lines and lines[0].rstrip() == "---":
        closing = next((i for i in range(1, len(lines)) if lines[i].rstrip() == "---"), None)
        if closing is not None and problem.line > closing + 1:
            return "body"
        for number in range(min(problem.line, len(lines)), 1, -1):
            at = _KEY.match(lines[number - 1])
            if at is not None:
                return at.group(1) if at.group(1) in EDITED else ""
    # Line 1 (a key that is missing): the message names it.
    message = problem.message
    for key in EDITED:
        if message.startswith((f"{key} ", f"missing {key}")):
            return key
    return ""


@dataclass(frozen=True)
class Frame:
    """One iframe of the preview."""

    width: int
    device: str
    scheme: str
    html: str

    @property
    def label(self) -> str:
        """What the frame shows, for its caption and its accessible name."""
        return f"{self.device}, {self.width} px, {self.scheme}"


@dataclass(frozen=True)
class EmailPreview:
    """An issue as the preview shows it: subject, preheader, frames, text part."""

    subject: str
    preheader: str
    frames: tuple[Frame, ...]
    text: str


def in_scheme(html: str, scheme: str) -> str:
    """The email as a reader whose mail app is in ``scheme`` sees it.

    A frame follows the viewer's own setting, so each frame is made to show one
    scheme whatever that is: the email's dark-mode rules apply always
    (``@media all``) or never (``@media not all``), and it declares only that scheme.
    """
    query = "all" if scheme == "dark" else "not all"
    forced = _DARK_QUERY.sub(query, html)
    return _COLOR_SCHEME.sub(lambda m: m.group(1) + scheme, forced)


def email_preview(newsletter: Newsletter, issue: RenderedIssue) -> EmailPreview:
    """The preview of a rendered issue, personalized for a sample subscriber."""
    html, text = preview_parts(newsletter, issue)
    frames = tuple(
        Frame(width, device, scheme, in_scheme(html, scheme))
        for width, device in WIDTHS
        for scheme in SCHEMES
    )
    return EmailPreview(issue.subject, issue.preheader, frames, text)
