"""The catch-up sends of the coming days, as ``schedule list`` shows them to the owner.

The daily pass (:mod:`pipeline.schedule.catch_up_track`) plans only today's
sends; what the next passes will plan depends on what the earlier ones did.
So the coming week is planned the way the passes would plan it, day after
day in one transaction that is always rolled back
(:func:`pipeline.store.catch_up_views.plan_days`): the same SQL, the same
spacing, limit and "one newsletter email a day", nothing stored.

Not simulated: live issues still to come (a live part can move someone's
catch-up send one day on, or take it off their track), people who join,
confirm or leave meanwhile, and sends that fail. The listing is what the
passes will plan if none of that happens.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from pipeline.config import ScheduleSettings
from pipeline.content.catch_up import day_of, series_tracks
from pipeline.newsletter import Newsletter
from pipeline.store.catch_up import Day, campaign_ids_by_slug
from pipeline.store.catch_up_views import plan_days

#: How far ahead ``schedule list`` looks for catch-up sends.
OUTLOOK_DAYS = 7


@dataclass(frozen=True)
class CatchUpDue:
    """One part going out on the catch-up track at a coming send slot, to how many people."""

    at: datetime
    series: str
    part: int | None
    slug: str
    people: int


def day_after(day: Day, schedule: ScheduleSettings) -> Day:
    """The next local day (aware arithmetic is wall-clock time: safe across a clock change)."""
    return day_of(day.slot + timedelta(days=1), schedule)


def next_pass_day(now: datetime, schedule: ScheduleSettings) -> Day:
    """The day of the next catch-up pass: today before the send time, else tomorrow."""
    today = day_of(now, schedule)
    return today if now < today.slot else day_after(today, schedule)


def catch_up_outlook(newsletter: Newsletter, days: int = OUTLOOK_DAYS) -> list[CatchUpDue]:
    """The catch-up sends the next ``days`` passes would plan, by slot, series and part."""
    schedule = newsletter.settings.schedule
    coming = [next_pass_day(newsletter.clock(), schedule)]
    while len(coming) < days:
        coming.append(day_after(coming[-1], schedule))
    articles = newsletter.articles().articles
    ids = campaign_ids_by_slug(newsletter.sessions)
    tracks = series_tracks(articles, ids, newsletter.settings.series)
    if not tracks:
        return []  # no series has a part out yet: nobody can be behind
    parts = {ids[a.slug]: a for a in articles if a.series is not None and a.slug in ids}
    due = plan_days(newsletter.sessions, tracks, coming)
    sends = [
        CatchUpDue(
            at=d.slot,
            series=parts[d.campaign_id].series or "",
            part=parts[d.campaign_id].part,
            slug=parts[d.campaign_id].slug,
            people=d.people,
        )
        for d in due
        if d.campaign_id in parts
    ]
    return sorted(sends, key=lambda s: (s.at, s.series, s.part or 0))
