"""One person as the owner sees them: status, consent, and where they are in each series.

``newsletter subscribers show EMAIL`` prints :func:`subscriber_profile` and the
dashboard's person page renders the same object, so the two never disagree.

Per series: the parts the person has a ledger row for (in any state: sent,
planned for a catch-up slot, failed, in doubt...), live or caught up, and the
part that comes next with its date. The next part is read from the same
rules the senders follow, not guessed again here:

* on the catch-up track (behind on a series that catches up), the part the
  daily pass would give them (:func:`pipeline.store.catch_up_views.due_part`,
  the pass's own SQL) on the first day the spacing allows
  (:func:`pipeline.content.catch_up.next_catch_up_day` of their latest
  catch-up send), and never before the next send time;
* otherwise (caught up, joined before part 1, or a series without catch-up)
  the series' next live part and the queue's planned date
  (:meth:`pipeline.newsletter.Newsletter.queue`).

A live issue of another series or a standalone article on the same day can
still move a catch-up send one day on (one newsletter email a day); the date
shown is the one the reader's own email announces. While the schedule is
paused no date is shown, as ``queue`` shows none: nothing goes out until a resume.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from pipeline.content.articles import Article
from pipeline.content.catch_up import next_catch_up_day, series_tracks, settings_for
from pipeline.content.reserved import WELCOME_SLUG
from pipeline.content.series import part_order
from pipeline.errors import InvalidAddressError
from pipeline.newsletter import Newsletter, QueueEntry
from pipeline.schedule.catch_up_outlook import day_after, next_pass_day
from pipeline.store.catch_up import SeriesTrack, campaign_ids_by_slug
from pipeline.store.catch_up_views import DeliveryView, deliveries_of, due_part
from pipeline.store.models import SubscriberStatus
from pipeline.store.scheduler_state import SchedulerStateStore
from pipeline.store.subscriber_search import SubscriberDetail, subscriber_detail
from pipeline.subscribers.rules import normalize_email

LIVE = "live"
CATCH_UP = "catch-up"
WELCOME = "welcome"


def _local(moment: datetime | None, tz: ZoneInfo) -> str | None:
    # Whole seconds: a person reads these, and send slots have none to lose.
    return moment.astimezone(tz).isoformat(timespec="seconds") if moment else None


@dataclass(frozen=True)
class Consent:
    """What the store keeps of how and when the person joined (and left)."""

    source: str | None
    subscribed_at: datetime
    consent_at: datetime | None
    consent_source: str | None
    consent_ip: str | None
    confirm_sent_at: datetime | None
    unsubscribed_at: datetime | None

    def as_dict(self, tz: ZoneInfo) -> dict[str, object]:
        """The ``consent`` object of ``subscribers show --json``."""
        return {
            "source": self.source,
            "subscribed_at": _local(self.subscribed_at, tz),
            "consent_at": _local(self.consent_at, tz),
            "consent_source": self.consent_source,
            "consent_ip": self.consent_ip,
            "confirm_sent_at": _local(self.confirm_sent_at, tz),
            "unsubscribed_at": _local(self.unsubscribed_at, tz),
        }


@dataclass(frozen=True)
class Received:
    """One email the person has a ledger row for: live, caught up or the welcome."""

    slug: str
    title: str
    part: int | None
    via: str  # "live", "catch-up" or "welcome"
    state: str  # the row's delivery state: sent, pending, failed, uncertain...
    sent_at: datetime | None
    #: The send slot a catch-up row was planned for (None for live rows).
    catch_up_at: datetime | None

    def as_dict(self, tz: ZoneInfo) -> dict[str, object]:
        """One item of ``received`` (or ``other``)."""
        return {
            "part": self.part,
            "slug": self.slug,
            "title": self.title,
            "via": self.via,
            "state": self.state,
            "sent_at": _local(self.sent_at, tz),
            "catch_up_at": _local(self.catch_up_at, tz),
        }


@dataclass(frozen=True)
class NextPart:
    """The part of a series the person gets next, how, and when (None: no date planned)."""

    part: int | None
    slug: str
    title: str
    via: str  # "catch-up" or "live"
    at: datetime | None

    def as_dict(self, tz: ZoneInfo) -> dict[str, object]:
        """A series' ``next`` object."""
        return {
            "part": self.part,
            "slug": self.slug,
            "title": self.title,
            "via": self.via,
            "at": _local(self.at, tz),
        }


@dataclass(frozen=True)
class SeriesProgress:
    """Where the person stands in one series."""

    series: str
    catch_up: bool
    received: tuple[Received, ...]
    next: NextPart | None

    def as_dict(self, tz: ZoneInfo) -> dict[str, object]:
        """One item of ``series``."""
        return {
            "series": self.series,
            "catch_up": self.catch_up,
            "received": [r.as_dict(tz) for r in self.received],
            "next": self.next.as_dict(tz) if self.next else None,
        }


@dataclass(frozen=True)
class SubscriberProfile:
    """Everything ``subscribers show`` tells the owner about one person."""

    email: str
    first_name: str | None
    last_name: str | None
    status: SubscriberStatus
    tags: tuple[str, ...]
    consent: Consent
    series: tuple[SeriesProgress, ...]
    #: Emails outside any series: standalone articles and the welcome email.
    other: tuple[Received, ...]
    #: The clinic's timezone: every time in ``as_dict`` is local, with its UTC offset.
    timezone: str

    def as_dict(self) -> dict[str, object]:
        """The shape of ``subscribers show --json``."""
        tz = ZoneInfo(self.timezone)
        return {
            "email": self.email,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "status": self.status.value,
            "tags": list(self.tags),
            "consent": self.consent.as_dict(tz),
            "series": [s.as_dict(tz) for s in self.series],
            "other": [r.as_dict(tz) for r in self.other],
        }


def subscriber_profile(newsletter: Newsletter, email: str) -> SubscriberProfile | None:
    """The person stored under ``email`` (any case, surrounding spaces ignored); None if absent."""
    try:
        address = normalize_email(email)
    except InvalidAddressError:
        return None  # every stored address passed this check: nobody is stored under it
    person = subscriber_detail(newsletter.sessions, email=address)
    if person is None:
        return None
    rows = deliveries_of(newsletter.sessions, person.id)
    articles = newsletter.articles().articles
    ids = campaign_ids_by_slug(newsletter.sessions)
    folder = _Folder(
        newsletter=newsletter,
        by_slug={a.slug: a for a in articles},
        slug_of={cid: slug for slug, cid in ids.items()},
        tracks={t.series: t for t in series_tracks(articles, ids, newsletter.settings.series)},
        queue=tuple(newsletter.queue()),
        paused=SchedulerStateStore(newsletter.sessions).paused(),
    )
    names = {a.series for a in articles if a.series is not None and a.status != "draft"}
    names |= {name for r in rows if (name := folder.series_of(r.slug)) is not None}
    series = tuple(_progress(folder, person, name, rows) for name in sorted(names))
    other = tuple(
        _received(r, folder.by_slug.get(r.slug)) for r in rows if folder.series_of(r.slug) is None
    )
    return SubscriberProfile(
        email=person.email,
        first_name=person.first_name,
        last_name=person.last_name,
        status=person.status,
        tags=person.tags,
        consent=Consent(
            source=person.source,
            subscribed_at=person.created_at,
            consent_at=person.consent_at,
            consent_source=person.consent_source,
            consent_ip=person.consent_ip,
            confirm_sent_at=person.confirm_sent_at,
            unsubscribed_at=person.unsubscribed_at,
        ),
        series=series,
        other=other,
        timezone=newsletter.settings.schedule.timezone,
    )


@dataclass(frozen=True)
class _Folder:
    """What one profile reads once from the folder and the store."""

    newsletter: Newsletter
    by_slug: dict[str, Article]
    slug_of: dict[int, str]  # campaign id -> slug
    tracks: dict[str, SeriesTrack]  # series with catch-up on and a part sent
    queue: tuple[QueueEntry, ...]
    paused: bool  # the schedule is paused: no catch-up pass runs

    def series_of(self, slug: str) -> str | None:
        article = self.by_slug.get(slug)
        return article.series if article else None


def _received(row: DeliveryView, article: Article | None) -> Received:
    via = WELCOME if row.slug == WELCOME_SLUG else CATCH_UP if row.catch_up_at else LIVE
    return Received(
        slug=row.slug,
        title=article.title if article else row.subject,
        part=article.part if article else None,
        via=via,
        state=row.status.value,
        sent_at=row.sent_at,
        catch_up_at=row.catch_up_at,
    )


def _progress(
    folder: _Folder, person: SubscriberDetail, name: str, rows: list[DeliveryView]
) -> SeriesProgress:
    mine = sorted(
        (r for r in rows if folder.series_of(r.slug) == name),
        key=lambda r: part_order(folder.by_slug[r.slug]),
    )
    following: NextPart | None = None
    if person.status == SubscriberStatus.ACTIVE:
        track = folder.tracks.get(name)
        if track is not None:
            following = _next_catch_up(folder, person.id, track, mine)
        if following is None:
            following = _next_live(folder, name)
    return SeriesProgress(
        series=name,
        catch_up=settings_for(name, folder.newsletter.settings.series).catch_up,
        received=tuple(_received(r, folder.by_slug[r.slug]) for r in mine),
        next=following,
    )


def _next_catch_up(
    folder: _Folder, subscriber_id: int, track: SeriesTrack, mine: list[DeliveryView]
) -> NextPart | None:
    """The part the pass gives this person next, and its day; None when they are not behind."""
    newsletter = folder.newsletter
    schedule = newsletter.settings.schedule
    day = next_pass_day(newsletter.clock(), schedule)
    slots = [r.catch_up_at for r in mine if r.catch_up_at is not None]
    if slots:
        spaced = next_catch_up_day(max(slots), track.every, schedule)
        day = spaced if spaced.slot > day.slot else day
    # That day may already hold a newsletter email (today's live issue, another
    # series' catch-up): the pass then gives the part the day after.
    for candidate in (day, day_after(day, schedule)):
        campaign_id = due_part(newsletter.sessions, track, subscriber_id, candidate)
        if campaign_id is not None:
            article = folder.by_slug[folder.slug_of[campaign_id]]
            # Paused, no pass runs: like the queue, show no date that needs a resume first.
            at = None if folder.paused else candidate.slot
            return NextPart(article.part, article.slug, article.title, CATCH_UP, at)
    return None


def _next_live(folder: _Folder, name: str) -> NextPart | None:
    """The series' next part in the live queue, with the date the queue plans for it."""
    entry = next((e for e in folder.queue if e.series == name), None)
    if entry is None:
        return None
    return NextPart(entry.part, entry.slug, entry.title, LIVE, entry.planned_at)
