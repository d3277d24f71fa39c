"""Series order, previous/next links and series warnings.

The send queue (what goes out next, and when) is :mod:`pipeline.content.queue`.

:class:`SeriesNav` is the one shape of a series' Previous/Next: the email templates
and the web archive's frame both receive it (the archive with its links pointed into
the archive by :meth:`SeriesNav.relinked`).
"""

from __future__ import annotations

import dataclasses
import re
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo

from pipeline.content.articles import Article, front_matter_line
from pipeline.errors import Problem
from pipeline.links import neighbour_url

_SMALL_WORDS = frozenset(
    {"a", "an", "and", "as", "at", "but", "by", "for", "in", "of", "on", "or", "the", "to", "vs"}
)
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = (
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
)  # fmt: skip


def series_title(slug: str) -> str:
    """``massage-and-wellbeing`` -> ``Massage and Wellbeing``."""
    words = [w for w in re.split(r"[-_\s]+", slug) if w]
    return " ".join(
        w if i and w in _SMALL_WORDS else w[:1].upper() + w[1:] for i, w in enumerate(words)
    )


def short_date(moment: datetime) -> str:
    """``Tue 8 Dec`` in ``moment``'s own timezone, the same in every locale."""
    return f"{_WEEKDAYS[moment.weekday()]} {moment.day} {_MONTHS[moment.month - 1]}"


@dataclass(frozen=True)
class SeriesLink:
    """A neighbouring article in the same series, as the email and the archive link it.

    ``sent`` is the "coming next" state: a neighbour not sent yet is announced as
    coming (with its planned date when known) rather than as a plain Next.
    ``in_inbox_at`` is the reader's side of a catch-up email: the next part
    went out long ago, and reaches this reader on their own track that day
    (a template that does not know it shows a plain Next, since it is sent).
    """

    slug: str
    title: str
    url: str
    sent: bool
    planned_at: datetime | None = None
    in_inbox_at: datetime | None = None

    @property
    def planned(self) -> str | None:
        """``Tue 8 Dec``, only for a neighbour not sent yet whose date is known."""
        if self.sent or self.planned_at is None:
            return None
        return short_date(self.planned_at)

    @property
    def in_inbox(self) -> str | None:
        """``Thu 3 Dec``: when this part reaches a catching-up reader; None otherwise."""
        return short_date(self.in_inbox_at) if self.in_inbox_at is not None else None


@dataclass(frozen=True)
class SeriesNav:
    """Where an article sits in its series and who its neighbours are."""

    series: str
    part: int
    position: int  # 1-based place among the series' non-draft articles
    total: int
    previous: SeriesLink | None
    next: SeriesLink | None

    @property
    def series_title(self) -> str:
        """The series' slug as a heading: "Part 2 of 3 in Massage and Wellbeing"."""
        return series_title(self.series)

    def relinked(self, url_for: Callable[[SeriesLink], str]) -> SeriesNav:
        """The same navigation with each neighbour's ``url`` from ``url_for``."""

        def link(neighbour: SeriesLink | None) -> SeriesLink | None:
            if neighbour is None:
                return None
            return dataclasses.replace(neighbour, url=url_for(neighbour))

        return dataclasses.replace(self, previous=link(self.previous), next=link(self.next))

    def for_catch_up(self, next_at: datetime) -> SeriesNav:
        """The navigation as a catch-up reader sees it: a next part that went out
        already reaches them at ``next_at`` (one not sent yet stays "Coming next")."""
        if self.next is None or not self.next.sent:
            return self
        return dataclasses.replace(self, next=dataclasses.replace(self.next, in_inbox_at=next_at))

    def in_timezone(self, tz: tzinfo) -> SeriesNav:
        """The same navigation with planned dates in ``tz`` (the clinic's), for display."""

        def local(moment: datetime | None) -> datetime | None:
            if moment is None or moment.tzinfo is None:
                return moment  # naive: already local, as written
            return moment.astimezone(tz)

        def link(neighbour: SeriesLink | None) -> SeriesLink | None:
            if neighbour is None:
                return None
            return dataclasses.replace(
                neighbour,
                planned_at=local(neighbour.planned_at),
                in_inbox_at=local(neighbour.in_inbox_at),
            )

        return dataclasses.replace(self, previous=link(self.previous), next=link(self.next))


def article_url(article: Article, base_url: str) -> str:
    """Where a reader finds ``article``: its ``canonical_url``, else the web archive."""
    return neighbour_url(base_url, article.slug, article.canonical_url)


def part_order(article: Article) -> tuple[int, str]:
    """Where ``article`` stands in its series: by part, then slug. Navigation and the
    queue's "an earlier part goes first" rule both sort by this."""
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
        key=part_order,
    )
    members.append(article)
    members.sort(key=part_order)
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
        members.sort(key=part_order)
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
