"""Series order, previous/next links and the send queue."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from pipeline.content.articles import Article, front_matter_line
from pipeline.errors import Problem

#: Sorts an article without ``send_after`` before any that has one.
_EARLIEST = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class SeriesLink:
    """A link to a neighbouring article in the same series."""

    slug: str
    title: str
    url: str
    sent: bool
    planned_at: datetime | None = None


@dataclass(frozen=True)
class SeriesNav:
    """Where an article sits in its series and who its neighbours are."""

    series: str
    part: int
    position: int  # 1-based place among the series' non-draft articles
    total: int
    previous: SeriesLink | None
    next: SeriesLink | None


def article_url(article: Article, base_url: str) -> str:
    """Where a reader finds ``article``: its ``canonical_url``, else the web archive."""
    if article.canonical_url:
        return article.canonical_url
    return f"{base_url.rstrip('/')}/archive/{article.slug}"


def _by_part(article: Article) -> tuple[int, str]:
    return (article.part or 0, article.slug)


def series_nav(
    article: Article,
    articles: Iterable[Article],
    *,
    sent_slugs: Collection[str],
    base_url: str,
    planned: Mapping[str, datetime] | None = None,
) -> SeriesNav | None:
    """Previous/next links for ``article`` within its series; None if it has no series.

    Neighbours are the nearest non-draft articles of the same series by part
    number, so a missing part is skipped over (parts 1 and 3: 1's next is 3).
    A draft being previewed is placed among them by its own part. ``sent``
    says whether a neighbour has gone out; ``planned_at`` comes from
    ``planned`` (slug -> when it is expected to go out) when given.
    """
    if article.series is None:
        return None
    members = sorted(
        (
            other
            for other in articles
            if other.series == article.series
            and other.status != "draft"
            and other.slug != article.slug
        ),
        key=_by_part,
    )
    members.append(article)
    members.sort(key=_by_part)
    index = members.index(article)

    def link(neighbour: Article) -> SeriesLink:
        return SeriesLink(
            slug=neighbour.slug,
            title=neighbour.title,
            url=article_url(neighbour, base_url),
            sent=neighbour.slug in sent_slugs,
            planned_at=(planned or {}).get(neighbour.slug),
        )

    return SeriesNav(
        series=article.series,
        part=article.part or 0,
        position=index + 1,
        total=len(members),
        previous=link(members[index - 1]) if index > 0 else None,
        next=link(members[index + 1]) if index + 1 < len(members) else None,
    )


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
                other.series == candidate.series and _by_part(other) < _by_part(candidate)
                for other in waiting
            )
            if not held_back:
                ordered.append(waiting.pop(index))
                break
    return ordered


def next_due(queue: Sequence[Article], moment: datetime) -> Article | None:
    """The article to send at ``moment``: the first in ``queue`` that is due.

    ``queue`` is :func:`queue_order`'s result. An article is due when its
    ``send_after`` has passed, unless an earlier part of its series is still
    waiting ahead of it in the queue (not yet due itself): parts go out in order.
    """
    blocked: set[str] = set()
    for article in queue:
        if article.send_after is None or article.send_after <= moment:
            if article.series is None or article.series not in blocked:
                return article
        elif article.series is not None:
            blocked.add(article.series)
    return None


def _numbers(parts: list[int]) -> str:
    return ", ".join(str(part) for part in parts)


def series_problems(articles: Iterable[Article]) -> list[Problem]:
    """Problems worth a warning in how the series are numbered.

    A gap in part numbers ("series 'x' has no part 2") is reported at the
    ``part:`` line of the first part after the gap; a queued part that would go
    out before an earlier part still in draft is reported at its own line.
    """
    by_series: defaultdict[str, list[Article]] = defaultdict(list)
    for article in articles:
        if article.series is not None and article.part is not None:
            by_series[article.series].append(article)
    problems: list[Problem] = []
    for series, members in sorted(by_series.items()):
        members.sort(key=_by_part)
        expected = 1
        for article in members:
            part = article.part or 0
            if part > expected:
                missing = list(range(expected, part))
                label = "part" if len(missing) == 1 else "parts"
                problems.append(
                    Problem(
                        article.path,
                        front_matter_line(article.path, "part"),
                        f"series {series!r} has no {label} {_numbers(missing)}",
                    )
                )
            expected = max(expected, part + 1)
        drafts = [a.part for a in members if a.status == "draft" and a.part is not None]
        for article in members:
            earlier_drafts = [part for part in drafts if part < (article.part or 0)]
            if article.status != "draft" and earlier_drafts:
                still = "is still a draft" if len(earlier_drafts) == 1 else "are still drafts"
                label = "part" if len(earlier_drafts) == 1 else "parts"
                problems.append(
                    Problem(
                        article.path,
                        front_matter_line(article.path, "part"),
                        f"series {series!r}: part {article.part} is queued but {label}"
                        f" {_numbers(earlier_drafts)} {still}, so it would go out first",
                    )
                )
    return problems
