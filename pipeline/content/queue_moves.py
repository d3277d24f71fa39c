"""Moving an article up or down the send queue by writing ``send_after``, as a person would.

The queue's order is :func:`pipeline.content.queue.queue_order` and nothing
else, so a move only changes the article files' ``send_after`` lines (through
:mod:`pipeline.content.editing`: only that line changes, the version is checked,
the write is atomic). Moving X *down* is moving the article below it *up*, so
every move is "X goes right above Y, the article now directly above it". The
first of these rules whose result is exactly that order wins:

1. Y is an earlier part of X's series: refused (parts go out in order).
2. Their ``send_after`` differ (one may have none): they swap them, text as written.
3. Y has a date: X gets the minute before it.
4. Y has none: Y gets the current minute, or the minute before the earliest
   other date in the queue if that is earlier, and X (if it has a date) the
   minute before Y's. A date already past is as due as none, so Y goes out no
   later than before; it now sorts after the undated articles and before the
   dated ones (moving a dated X up makes it due now: that is what "up" asks).

Each rule is tried on the articles *as they would be* with
:func:`queue_order`; when none gives exactly the old order with X and Y
swapped (other articles would move too, e.g. more undated ones follow X), the
move is refused with a message and nothing is written.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from pipeline.content.articles import Article
from pipeline.content.editing import (
    ArticleFile,
    edited_text,
    read_for_editing,
    save_article,
    send_after_moment,
)
from pipeline.content.queue import queue_order
from pipeline.content.series import part_order
from pipeline.errors import PipelineError

_MINUTE = timedelta(minutes=1)


class MoveRefused(PipelineError):
    """The move cannot be made by writing ``send_after``; nothing was written."""


@dataclass(frozen=True)
class SendAfterChange:
    """One file's new ``send_after`` as the form's fields (both empty: remove the line)."""

    article: Article
    send_date: str
    send_time: str


def queue_version(queue: Sequence[Article]) -> str:
    """What a move form carries: the order shown and each file's bytes, hashed.

    A move posted from a page whose queue has since changed (someone saved an
    article, another move) is refused rather than applied to a different order.
    """
    digest = hashlib.sha256()
    for article in queue:
        try:
            raw = article.path.read_bytes()
        except OSError:
            raw = b""
        digest.update(article.slug.encode() + b"\0" + hashlib.sha256(raw).digest())
    return digest.hexdigest()


def plan_move(
    articles: Sequence[Article],
    sent: Collection[str],
    slug: str,
    direction: str,
    now: datetime,
    tz: ZoneInfo,
) -> list[SendAfterChange]:
    """The ``send_after`` changes that move ``slug`` one place ``direction`` ("up"/"down")."""
    queue = queue_order(articles, sent)
    at = next((i for i, a in enumerate(queue) if a.slug == slug), None)
    if at is None:
        raise MoveRefused(f"{slug!r} is not in the queue (a draft, or already sent)")
    if direction == "up":
        if at == 0:
            raise MoveRefused(f"{slug!r} is already the first in the queue")
        mover, above = queue[at], queue[at - 1]
    elif direction == "down":
        if at == len(queue) - 1:
            raise MoveRefused(f"{slug!r} is already the last in the queue")
        mover, above = queue[at + 1], queue[at]
    else:
        raise MoveRefused(f"unknown direction {direction!r}")
    same_series = mover.series is not None and mover.series == above.series
    if same_series and part_order(above) < part_order(mover):
        raise MoveRefused(
            f"{mover.slug!r} (part {mover.part}) cannot go before {above.slug!r}"
            f" (part {above.part}): the parts of a series go out in order"
        )
    wanted = [a.slug for a in queue]
    index = wanted.index(above.slug)
    wanted[index], wanted[index + 1] = mover.slug, above.slug
    for changes in _candidates(queue, mover, above, now, tz):
        if _order_after(articles, sent, changes, tz) == wanted:
            return changes
    raise MoveRefused(
        f"{mover.slug!r} cannot go right above {above.slug!r} by changing send-after dates"
        " without moving other articles too: set their send-after dates in the editor"
    )


def _fields(article: Article, tz: ZoneInfo) -> tuple[str, str]:
    """The article's ``send_after`` as its form shows it (the text a swap writes)."""
    found = read_for_editing(article.path)
    if not isinstance(found, ArticleFile):
        raise MoveRefused(f"{article.path.name} cannot be read: fix it in a text editor")
    form = found.form(tz)
    return form.send_date, form.send_time


def _minute_fields(moment: datetime, tz: ZoneInfo) -> tuple[str, str]:
    local = moment.astimezone(tz)
    return local.date().isoformat(), local.strftime("%H:%M")


def _candidates(
    queue: Sequence[Article], mover: Article, above: Article, now: datetime, tz: ZoneInfo
) -> list[list[SendAfterChange]]:
    """The rules of the module docstring that apply, in order, as lists of changes."""
    candidates: list[list[SendAfterChange]] = []
    if mover.send_after != above.send_after:
        mover_fields, above_fields = _fields(mover, tz), _fields(above, tz)
        candidates.append(
            [SendAfterChange(mover, *above_fields), SendAfterChange(above, *mover_fields)]
        )
    if above.send_after is not None:
        earlier = _minute_fields(above.send_after - _MINUTE, tz)
        candidates.append([SendAfterChange(mover, *earlier)])
    else:
        dated = [a.send_after for a in queue if a.send_after is not None and a is not mover]
        slot = now.replace(second=0, microsecond=0)
        if dated:
            slot = min(slot, min(dated) - _MINUTE)
        changes = [SendAfterChange(above, *_minute_fields(slot, tz))]
        if mover.send_after is not None:
            changes.append(SendAfterChange(mover, *_minute_fields(slot - _MINUTE, tz)))
        candidates.append(changes)
    return candidates


def _order_after(
    articles: Sequence[Article],
    sent: Collection[str],
    changes: Sequence[SendAfterChange],
    tz: ZoneInfo,
) -> list[str]:
    """The queue's slugs if the changes were written (dates read as ``check`` reads them)."""
    new: dict[str, datetime | None] = {}
    for change in changes:
        text = f"{change.send_date} {change.send_time}".strip()
        new[change.article.slug] = send_after_moment(text, tz) if text else None
    changed = [
        dataclasses.replace(a, send_after=new[a.slug]) if a.slug in new else a for a in articles
    ]
    return [a.slug for a in queue_order(changed, sent)]


def write_field(path: Path, tz: ZoneInfo, **fields: str) -> bool:
    """Change form ``fields`` (``send_date``/``send_time``, ``status``) in one article file.

    Through the editor's own save: only the lines whose meaning changes are
    rewritten, and the file is replaced atomically only if it still holds the
    bytes just read (else :class:`~pipeline.content.editing.StaleVersion`).
    Returns whether anything was written.
    """
    found = read_for_editing(path)
    if not isinstance(found, ArticleFile):
        raise MoveRefused(f"{path.name} cannot be read: fix it in a text editor")
    form = dataclasses.replace(found.form(tz), **fields)
    return save_article(path, edited_text(found, form, tz), found.version)


def apply_move(changes: Sequence[SendAfterChange], tz: ZoneInfo) -> None:
    """Write a :func:`plan_move` result, one file after the other."""
    for change in changes:
        write_field(change.article.path, tz, send_date=change.send_date, send_time=change.send_time)
