"""A clinic with a six-part weekly series, for the catch-up track's tests.

:class:`World` owns a copy of the sample folder whose articles are replaced
by the series ``stretching`` (parts 1-6, queued), an injected clock, and a
:class:`Newsletter` on the given database. It plays days as the scheduler
would: at the send time (Tuesdays 09:00 Sydney) the live part goes out, and
every day at that time the catch-up pass runs.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from email.parser import BytesParser
from email.policy import default
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select

from pipeline.config import load_settings
from pipeline.newsletter import Newsletter
from pipeline.schedule.catch_up_track import PassReport, run_pass
from pipeline.store.models import Campaign, Delivery, DeliveryStatus, Subscriber
from pipeline.subscribers.commands import add_subscriber
from tests.helpers import FixedClock, copy_sample_folder

SYDNEY = ZoneInfo("Australia/Sydney")
#: Monday: part 1 goes out the next day, Tuesday 1 Dec 2026 at 09:00.
START = datetime(2026, 11, 30, 0, 0, tzinfo=SYDNEY)
SERIES = "stretching"
PARTS = 6


def part_slug(part: int) -> str:
    """The slug of part ``part`` of the series."""
    return f"stretching-part-{part}"


def write_series(articles: Path, parts: int = PARTS, extra: str = "") -> None:
    """Replace the folder's articles with ``parts`` queued parts of ``stretching``."""
    shutil.rmtree(articles)
    articles.mkdir()
    for part in range(1, parts + 1):
        (articles / f"{part_slug(part)}.md").write_text(
            f'---\ntitle: "Stretching, part {part}"\nseries: {SERIES}\npart: {part}\n'
            f'summary: "Part {part} of a series on stretching."\n---\n'
            f"Part {part}: hold each stretch for thirty seconds.\n{extra}",
            encoding="utf-8",
        )


@dataclass(frozen=True)
class Received:
    """One ledger row as the reader saw it."""

    email: str
    part: int
    status: DeliveryStatus
    sent_at: datetime | None
    catch_up: bool


class World:
    """The clinic, its clock and its newsletter, on one database."""

    def __init__(self, folder: Path, database_url: str, settings_extra: str = "") -> None:
        config = copy_sample_folder(folder)
        if settings_extra:
            with config.open("a", encoding="utf-8") as handle:
                handle.write("\n" + settings_extra + "\n")
        write_series(folder / "articles")
        self.config = config
        self.database_url = database_url
        self.clock = FixedClock(START)
        environ = {"NEWSLETTER_DATABASE_URL": database_url, "NEWSLETTER_SECRET_KEY": "k" * 32}
        self.environ = environ
        self.newsletter = Newsletter(load_settings(config, environ), clock=self.clock)

    def close(self) -> None:
        """Release the database."""
        self.newsletter.close()

    def at(self, moment: datetime) -> None:
        """Move the clock (never backwards)."""
        assert moment >= self.clock.now
        self.clock.now = moment

    def join(self, email: str) -> None:
        """``subscribers add`` now."""
        add_subscriber(self.newsletter.sessions, email)

    def send_slot(self, *, live_first: bool = True) -> PassReport:
        """What the scheduler does at today's send time: the live part (Tuesdays), the pass."""
        report: PassReport | None = None
        if not live_first:
            report = run_pass(self.newsletter)
        if self.clock.now.astimezone(SYDNEY).weekday() == 1:
            due = self.newsletter.next_due()
            if due is not None:
                self.newsletter.send(due.slug)
        if live_first:
            report = run_pass(self.newsletter)
        assert report is not None
        return report

    def slot(self, day: date) -> datetime:
        """09:00 Sydney on ``day``."""
        return datetime(day.year, day.month, day.day, 9, 0, tzinfo=SYDNEY)

    def received(self) -> list[Received]:
        """Every series row, oldest first by send time."""
        parts = {part_slug(p): p for p in range(1, PARTS + 1)}
        with self.newsletter.sessions() as session:
            rows = session.execute(
                select(
                    Subscriber.email,
                    Campaign.slug,
                    Delivery.status,
                    Delivery.sent_at,
                    Delivery.catch_up_at,
                )
                .join(Campaign, Campaign.id == Delivery.campaign_id)
                .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
                .order_by(Delivery.sent_at, Delivery.id)
            ).all()
        return [
            Received(email, parts[slug], status, sent_at, catch_up_at is not None)
            for email, slug, status, sent_at, catch_up_at in rows
            if slug in parts
        ]

    def received_text(self, email: str, part: int) -> str:
        """The plain-text part of the email ``email`` got for ``part`` (outbox transport)."""
        folder = self.newsletter.settings.outbox_path / part_slug(part)
        # Plain addresses keep their name in the file (outbox_file_name).
        (found,) = [path for path in folder.glob("*.eml") if path.name.endswith(f"-{email}.eml")]
        message = BytesParser(policy=default).parse(found.open("rb"))
        body = message.get_body(preferencelist=("plain",))
        assert body is not None
        return str(body.get_content())


def local_day(moment: datetime) -> date:
    """The Sydney calendar day of ``moment``."""
    return moment.astimezone(SYDNEY).date()


def days(start: date, count: int) -> list[date]:
    """``count`` consecutive days from ``start``."""
    return [start + timedelta(days=n) for n in range(count)]
