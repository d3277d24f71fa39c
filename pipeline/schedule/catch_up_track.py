"""The daily catch-up pass: plan today's catch-up sends, then send them, one campaign at a time.

``newsletter catch-up --yes`` and the scheduler's daily job (at the
``[schedule] cron`` hour and minute, clinic time) both call :func:`run_pass`,
so a pass by hand is exactly what the scheduler does. A second pass on the
same local day plans nothing: everyone it could reach already has an email
that day. The rules are :mod:`pipeline.content.catch_up` (which series, which
day) and :mod:`pipeline.store.catch_up` (who gets which part, as SQL).

(Not to be confused with :mod:`pipeline.schedule.catch_up`: what happens to a
*firing* the scheduler missed.)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import or_, true
from sqlalchemy.sql.elements import ColumnElement

from pipeline.content.articles import Article
from pipeline.content.catch_up import day_of, live_audience, next_catch_up_day, series_tracks
from pipeline.newsletter import Newsletter
from pipeline.render import RenderedIssue
from pipeline.store.catch_up import (
    CatchUpRow,
    Day,
    SeriesTrack,
    campaign_ids_by_slug,
    campaigns_due,
    plan_pass,
)


@dataclass(frozen=True)
class PartSend:
    """One part going out on the catch-up track today: to whom."""

    series: str
    slug: str
    part: int
    emails: tuple[str, ...]

    def as_dict(self) -> dict[str, object]:
        """The shape of ``catch-up --json``."""
        return {
            "series": self.series,
            "slug": self.slug,
            "part": self.part,
            "emails": list(self.emails),
        }


@dataclass(frozen=True)
class PassReport:
    """What a pass planned (or, dry, would plan) and, when it sent, the campaigns it ran."""

    slot: str
    parts: tuple[PartSend, ...]
    dry_run: bool
    sent: tuple[str, ...] = ()

    @property
    def people(self) -> int:
        """How many catch-up emails the pass planned (one per person at most)."""
        return sum(len(p.emails) for p in self.parts)


def run_pass(
    newsletter: Newsletter,
    *,
    dry_run: bool = False,
    send: Callable[[str], object] | None = None,
) -> PassReport:
    """Today's catch-up pass; ``send(slug)`` runs one campaign (default: ``newsletter.send``).

    Every campaign with catch-up rows planned today is run, even when this
    pass planned none of them itself: a pass stopped half way (a crash, a
    stop) is finished by the next one, and rows in doubt stay ``uncertain``.
    """
    settings = newsletter.settings
    day = day_of(newsletter.clock(), settings.schedule)
    articles = newsletter.articles().articles
    ids = campaign_ids_by_slug(newsletter.sessions)
    tracks = series_tracks(articles, ids, settings.series)
    rows = plan_pass(
        newsletter.sessions,
        tracks,
        day,
        dry_run=dry_run,
        issues=lambda campaign_ids: _catch_up_issues(newsletter, tracks, ids, day, campaign_ids),
        later_live=_later_live(newsletter, articles, day),
    )
    parts = _by_part(rows, _series_parts(articles, ids))
    slot = day.slot.astimezone(settings.schedule.tz).isoformat()
    if dry_run:
        return PassReport(slot=slot, parts=parts, dry_run=True)
    run = send or (lambda slug: newsletter.send(slug))
    by_id = {cid: slug for slug, cid in ids.items()}
    todays = [by_id[cid] for cid in campaigns_due(newsletter.sessions, day.slot) if cid in by_id]
    for slug in todays:
        run(slug)
    return PassReport(slot=slot, parts=parts, dry_run=False, sent=tuple(todays))


def _later_live(
    newsletter: Newsletter, articles: tuple[Article, ...], day: Day
) -> ColumnElement[bool] | None:
    """Who a live issue planned for later today (the schedule or a one-off) will reach.

    The pass leaves them for another day, so that its email and the live one
    never land on one day: a standalone issue reaches everyone active, a
    series part everyone it does not skip (:func:`live_audience`). Run at the
    send time, the live firing of that minute has gone first and is not
    "later"; run by hand in the morning, the afternoon's issue is.
    """
    now = newsletter.clock()
    planned = newsletter.planned(articles, newsletter.ledger.sent_slugs())
    later = {slug: at for slug, at in planned.items() if now <= at < day.end}
    audiences: list[ColumnElement[bool]] = []
    for slug, at in later.items():
        keep = live_audience(newsletter.sessions, articles, slug, newsletter.settings, at)
        if keep is None:
            return true()  # everyone active: nobody is caught up today
        audiences.append(keep)
    return or_(*audiences) if audiences else None


def _catch_up_issues(
    newsletter: Newsletter,
    tracks: Sequence[SeriesTrack],
    ids: Mapping[str, int],
    day: Day,
    campaign_ids: Sequence[int],
) -> dict[int, RenderedIssue]:
    """Each part going out today as its catch-up readers get it (the nav from their side).

    Their next part reaches them ``catch_up_every`` later, on the first send
    slot the pass allows (:func:`next_catch_up_day`); the same for everyone
    on this part today, so one issue per part and day serves them all.
    """
    by_id = {cid: slug for slug, cid in ids.items()}
    every = {cid: track.every for track in tracks for cid in track.campaign_ids}
    schedule = newsletter.settings.schedule
    return {
        cid: newsletter.render(
            by_id[cid], catch_up_next=next_catch_up_day(day.slot, every[cid], schedule).slot
        )
        for cid in campaign_ids
        if cid in by_id and cid in every
    }


def _series_parts(
    articles: Iterable[Article], ids: Mapping[str, int]
) -> dict[int, tuple[str, int, str]]:
    """campaign id -> (series, part, slug) for the series parts that have a campaign."""
    return {
        ids[a.slug]: (a.series, a.part or 0, a.slug)
        for a in articles
        if a.series is not None and a.slug in ids
    }


def _by_part(
    rows: list[CatchUpRow], parts: dict[int, tuple[str, int, str]]
) -> tuple[PartSend, ...]:
    emails: dict[int, list[str]] = {}
    for row in rows:
        emails.setdefault(row.campaign_id, []).append(row.email)
    sends = [
        PartSend(series=s, slug=slug, part=p, emails=tuple(emails[cid]))
        for cid, (s, p, slug) in parts.items()
        if cid in emails
    ]
    return tuple(sorted(sends, key=lambda p: (p.series, p.part)))
