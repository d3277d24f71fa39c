"""The catch-up track's rules on the folder's side: which series, which parts, which day.

Pure functions over the articles, the campaigns already planned (slug -> id)
and the settings; the SQL that applies them to every subscriber at once is
:mod:`pipeline.store.catch_up`, and the daily pass that runs both is
:mod:`pipeline.schedule.catch_up_track`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import date, datetime, time, timedelta

from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.elements import ColumnElement

from pipeline.config import ScheduleSettings, SeriesSettings, Settings
from pipeline.content.articles import Article
from pipeline.content.series import part_order
from pipeline.store.catch_up import (
    SLACK,
    Day,
    SeriesTrack,
    campaign_ids_by_slug,
    live_keep,
)

_FIRST_NUMBER = re.compile(r"\d+")


def send_time(schedule: ScheduleSettings) -> time:
    """The clinic's send time of day: the ``[schedule] cron`` minute and hour.

    A field that is a list or a range (``9,17``, ``8-10``) gives its first
    number; ``*`` gives 0. Catch-up sends go out once a day, at this time.
    """
    fields = schedule.cron.split()
    minute, hour = (_first(field) for field in fields[:2])
    return time(hour=min(hour, 23), minute=min(minute, 59))


def _first(field: str) -> int:
    found = _FIRST_NUMBER.search(field)
    return int(found.group()) if found else 0


def day_of(moment: datetime, schedule: ScheduleSettings) -> Day:
    """The clinic's local day holding ``moment``: its UTC bounds and its send slot."""
    tz = schedule.tz
    local = moment.astimezone(tz).date()
    return _day(local, schedule)


def _day(local: date, schedule: ScheduleSettings) -> Day:
    tz = schedule.tz
    start = datetime.combine(local, time(), tzinfo=tz)
    end = datetime.combine(local + timedelta(days=1), time(), tzinfo=tz)
    slot = datetime.combine(local, send_time(schedule), tzinfo=tz)
    return Day(start=start, end=end, slot=slot)


def next_catch_up_day(slot: datetime, every: timedelta, schedule: ScheduleSettings) -> Day:
    """The first day a catch-up send at ``slot`` lets the same person's next part go.

    The pass skips anyone with a catch-up send of the series later than
    ``slot - every`` (less a two-hour slack for clock changes), so with the
    default "2d" a part on Tuesday is followed on Thursday. A day taken by
    another newsletter email can still push it one day on: this is the
    planned date the reader and the owner are shown.
    """
    earliest = slot + every - SLACK
    local = earliest.astimezone(schedule.tz).date()
    day = _day(local, schedule)
    if day.slot < earliest:
        day = _day(local + timedelta(days=1), schedule)
    return day


def settings_for(series: str, configured: Mapping[str, SeriesSettings]) -> SeriesSettings:
    """A series' ``[series.SLUG]`` settings, or the defaults (catch-up on, "2d", 10)."""
    return configured.get(series, SeriesSettings())


def _sent_parts(
    series: str, articles: Iterable[Article], campaign_ids: Mapping[str, int]
) -> list[Article]:
    """The series' parts that have a campaign (went out live), in part order."""
    members = [
        a for a in articles if a.series == series and a.part is not None and a.slug in campaign_ids
    ]
    return sorted(members, key=part_order)


def series_tracks(
    articles: Iterable[Article],
    campaign_ids: Mapping[str, int],
    configured: Mapping[str, SeriesSettings],
) -> list[SeriesTrack]:
    """Every series with catch-up on and at least one part sent, for the daily pass.

    A standalone article (no series) is never caught up.
    """
    listed = list(articles)
    names = sorted({a.series for a in listed if a.series is not None})
    tracks: list[SeriesTrack] = []
    for name in names:
        settings = settings_for(name, configured)
        if not settings.catch_up:
            continue
        parts = _sent_parts(name, listed, campaign_ids)
        if parts:
            tracks.append(
                SeriesTrack(
                    series=name,
                    campaign_ids=tuple(campaign_ids[a.slug] for a in parts),
                    every=settings.catch_up_every,
                    limit=settings.catch_up_limit,
                )
            )
    return tracks


def previous_part(
    article: Article,
    articles: Iterable[Article],
    campaign_ids: Mapping[str, int],
    configured: Mapping[str, SeriesSettings],
) -> tuple[bool, int | None]:
    """For a live send of ``article``: (does its series catch up?, the previous sent part's id).

    The live snapshot of a catch-up series skips whoever has no row for the
    previous part sent (they are behind: this part comes on their own track).
    """
    if article.series is None or not settings_for(article.series, configured).catch_up:
        return False, None
    earlier = [
        a
        for a in _sent_parts(article.series, articles, campaign_ids)
        if part_order(a) < part_order(article)
    ]
    return True, (campaign_ids[earlier[-1].slug] if earlier else None)


def live_audience(
    sessions: sessionmaker[Session],
    articles: Iterable[Article],
    slug: str,
    settings: Settings,
    now: datetime,
) -> ColumnElement[bool] | None:
    """The extra snapshot condition of a live send of ``slug`` (None: everyone active).

    Used when a campaign is planned and by ``--include-new``, so neither puts
    someone who is catching up on the series into a part out of order.
    """
    listed = list(articles)
    article = next((a for a in listed if a.slug == slug), None)
    if article is None:
        return None
    ids = campaign_ids_by_slug(sessions)
    on, previous = previous_part(article, listed, ids, settings.series)
    if not on:
        return None
    return live_keep(previous, day_of(now, settings.schedule))
