"""The send queue: what goes out next, and when, decided in this one module.

Every place that asks "what goes out next, and when" calls these pure
functions: ``newsletter queue`` and the archive's "coming soon" date
(:meth:`pipeline.newsletter.Newsletter.planned`), ``newsletter send`` without a
slug (:meth:`~pipeline.newsletter.Newsletter.next_due`), the scheduler's
recurring firing (:func:`pipeline.schedule.jobs.send_due`) and ``newsletter
schedule list`` (:func:`pipeline.cli.schedule.schedule_listing`). Their inputs
are the articles, the slugs already sent, the pending one-off sends (slug ->
time) and the recurring trigger; reading those from the folder and the
database is the callers' job, so the rule itself is the same everywhere and a
plan shown to the owner is exactly what the scheduler will do.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from apscheduler.triggers.base import BaseTrigger

from pipeline.content.articles import Article
from pipeline.content.series import part_order
from pipeline.schedule.crontab import next_firings

#: Sorts an article without ``send_after`` before any that has one.
_EARLIEST = datetime.min.replace(tzinfo=UTC)
#: How far ahead planning looks; a year of weekly sends is plenty for a queue.
_PLANNING_HORIZON = 600


@dataclass(frozen=True)
class Firing:
    """One coming firing of the recurring schedule and the article it would send."""

    at: datetime
    slug: str | None


def _send_key(article: Article) -> tuple[datetime, str, int, str]:
    return (article.send_after or _EARLIEST, article.series or "", article.part or 0, article.slug)


def queue_order(articles: Iterable[Article], sent_slugs: Collection[str]) -> list[Article]:
    """The queued (non-draft), not-yet-sent articles in the order they go out.

    The order is by ``send_after`` (none first), then series, part and slug,
    with one rule on top: a part never goes before an earlier part of its
    series that is also still waiting in the queue. If ``send_after`` would
    put it first, it waits and goes right after that earlier part. (Parts
    already sent, and drafts, do not hold anything back.)

    Each step takes the first article in that order whose earlier waiting
    parts have all been placed, which keeps the order otherwise unchanged.
    """
    waiting = sorted(
        (a for a in articles if a.status != "draft" and a.slug not in sent_slugs),
        key=_send_key,
    )
    ordered: list[Article] = []
    while waiting:
        for index, candidate in enumerate(waiting):
            held_back = candidate.series is not None and any(
                other.series == candidate.series and part_order(other) < part_order(candidate)
                for other in waiting
            )
            if not held_back:
                ordered.append(waiting.pop(index))
                break
    return ordered


def _not_before(article: Article, one_offs: Mapping[str, datetime]) -> datetime | None:
    # An article with a pending one-off is not due before that time, whatever
    # its own ``send_after`` says; its place in the queue stays, so until then
    # it holds back the later parts of its series like any article not yet due.
    held = one_offs.get(article.slug)
    if held is None:
        return article.send_after
    return max(held, article.send_after or held)


def next_due(
    queue: Sequence[Article], moment: datetime, one_offs: Mapping[str, datetime] | None = None
) -> Article | None:
    """The article to send at ``moment``: the first in ``queue`` that is due.

    ``queue`` is :func:`queue_order`'s result. An article is due when its
    ``send_after`` has passed, unless an earlier part of its series is still
    waiting ahead of it in the queue (not yet due itself): parts go out in order.
    An article with a pending one-off send (``one_offs``: slug -> time) waits
    for its own time, and so do the later parts of its series: that is what a
    recurring firing sends.
    """
    blocked: set[str] = set()
    for article in queue:
        not_before = _not_before(article, one_offs or {})
        if not_before is None or not_before <= moment:
            if article.series is None or article.series not in blocked:
                return article
        elif article.series is not None:
            blocked.add(article.series)
    return None


def planned_dates(
    queue: Sequence[Article],
    trigger: BaseTrigger,
    now: datetime,
    one_offs: Mapping[str, datetime] | None = None,
    skipped: Collection[datetime] = (),
) -> dict[str, datetime]:
    """When each queued article is expected to go out.

    One-off sends keep their own time. Every recurring firing sends what
    :func:`next_due` picks at that moment, which is exactly what the scheduler
    does. An article held for its one-off send is never taken by a recurring
    firing before its time, and it is out of the queue from that time on
    (planning assumes the one-off fires); until then it holds back the later
    parts of its series. ``skipped``: recurring firings the owner held, which
    send nothing (what they would have sent waits for the next one).
    """
    held = dict(one_offs or {})
    planned = dict(held)
    waiting = list(queue)
    for firing in next_firings(trigger, now, _PLANNING_HORIZON):
        # One-offs whose time has come are out of the queue by this firing.
        waiting = [a for a in waiting if not (a.slug in held and held[a.slug] <= firing)]
        if not any(a.slug not in held for a in waiting):
            break
        if firing in skipped:
            continue
        article = next_due(waiting, firing, held)
        if article is not None:
            planned[article.slug] = firing
            waiting = [a for a in waiting if a.slug != article.slug]
    return planned


def upcoming_firings(
    queue: Sequence[Article],
    trigger: BaseTrigger,
    now: datetime,
    one_offs: Mapping[str, datetime],
    count: int,
    skipped: Collection[datetime] = (),
) -> list[Firing]:
    """The next ``count`` recurring firings, each with the article it would send (or None).

    A firing in ``skipped`` (held by the owner) is listed, and sends nothing
    (None): what it would have sent is planned for a later firing.
    """
    planned = planned_dates(queue, trigger, now, one_offs, skipped)
    by_firing = {at: slug for slug, at in planned.items() if slug not in one_offs}
    return [Firing(at, by_firing.get(at)) for at in next_firings(trigger, now, count)]


def next_firing(
    queue: Sequence[Article],
    trigger: BaseTrigger,
    now: datetime,
    one_offs: Mapping[str, datetime],
    skipped: Collection[datetime] = (),
) -> Firing | None:
    """The next recurring firing not in ``skipped`` (held), with the article it would send."""
    firings = upcoming_firings(queue, trigger, now, one_offs, 1 + len(skipped), skipped)
    return next((f for f in firings if f.at not in skipped), None)
