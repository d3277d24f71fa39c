"""``subscribers forget``: nothing of the address stays, and nothing but the person brings it back.

The SQLite test scans the bytes of the database file, its WAL and its shared
memory file, on a folder opened as the app opens it (WAL mode), after events
arrived both before the person's row existed (unlinked) and after (linked).
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, Text, cast, column, func, inspect, select, table, update
from sqlalchemy import event as sa_event

from pipeline.cli import main
from pipeline.events import record_events
from pipeline.newsletter import Newsletter
from pipeline.store.db import make_engine, make_sessionmaker, migrate
from pipeline.store.models import Campaign, Delivery, DeliveryStatus, ErasedAddress, Subscriber
from pipeline.subscribers import (
    SubscriberErasedError,
    SubscriberError,
    add_subscriber,
    forget_subscriber,
    import_csv,
)
from pipeline.subscribers.erasure import erasure_digest
from pipeline.web.app import create_app
from tests.events.webhook_helpers import event, post_events, webhook_newsletter
from tests.helpers import FixedClock
from tests.web.helpers import (
    NEXT_SLUG,
    SECRET,
    confirm,
    confirm_link,
    status_of,
    subscribe,
    web_client,
)

pytestmark = pytest.mark.anyio

LATE = "late.reader@example.com"  # the person who asks to be forgotten
PRIYA = "priya.sharma@example.com"


def database_bytes(newsletter: Newsletter) -> bytes:
    """The SQLite file, its WAL and its shared-memory file, as they are on disk now."""
    path = Path(newsletter.engine.url.database or "")
    parts = [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]
    return b"".join(p.read_bytes() for p in parts if p.exists())


def mentions(data: bytes, address: str) -> bool:
    # Lower-cased: an address can be stored in the case it was typed.
    return address.encode("utf-8") in data.lower()


def rows_mentioning(engine: Engine, address: str) -> list[str]:
    """``table.column`` for every row of every table whose value contains ``address``."""
    found = []
    inspector = inspect(engine)
    with engine.connect() as connection:
        for name in inspector.get_table_names():
            for col in inspector.get_columns(name):
                value = func.lower(cast(column(col["name"]), Text))
                query = select(func.count()).select_from(table(name)).where(value.contains(address))
                if connection.scalar(query):
                    found.append(f"{name}.{col['name']}")
    return found


def unlinked_open(address: str, clock: FixedClock) -> dict[str, Any]:
    """An open event with no custom args (e.g. for a test send), as SendGrid posts it."""
    return {
        "email": address,
        "timestamp": int(clock().timestamp()),
        "event": "open",
        "sg_event_id": uuid.uuid4().hex,
        "ip": "203.0.113.77",
        "useragent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)",
    }


@pytest.fixture
def newsletter(tmp_path: Path, clock: FixedClock) -> Newsletter:
    # The person who signs up late gets the next part live here: this test is about
    # erasure, so the series' catch-up track (which would hold them back) is off.
    return webhook_newsletter(
        tmp_path / "clinic",
        clock,
        edit_settings=lambda text: text + "\n[series.massage-and-wellbeing]\ncatch_up = false\n",
    )


@pytest.mark.parametrize("secure_delete", ["as built", "off"])
async def test_forget_leaves_no_byte_of_the_address_in_the_sqlite_files(
    newsletter: Newsletter, clock: FixedClock, secure_delete: str
) -> None:
    if secure_delete == "off":
        # Debian's SQLite zeroes deleted bytes by default; most other builds do not.
        sa_event.listen(
            newsletter.engine,
            "connect",
            lambda connection, _record: connection.execute("PRAGMA secure_delete=OFF"),
        )
        newsletter.engine.dispose()
    async with web_client(create_app(newsletter)) as client:
        # An event arrives before the person is on the list: stored without a subscriber id.
        first = await post_events(client, clock, [unlinked_open("Late.Reader@Example.com", clock)])
        assert first.json()["stored"] == 1
        add_subscriber(newsletter.sessions, LATE, first_name="Lately", secret_key=SECRET)
        add_subscriber(newsletter.sessions, LATE, last_name="Reader", secret_key=SECRET)
        newsletter.send(NEXT_SLUG)
        linked = [event(newsletter, kind, LATE, NEXT_SLUG) for kind in ("delivered", "open")]
        assert (await post_events(client, clock, linked)).json()["stored"] == 2
    with newsletter.sessions.begin() as session:
        # A refused batch names one address in every row's error (SendGrid's 400 does).
        session.execute(
            update(Delivery).values(error=f"400: invalid personalizations[1].to: {LATE}")
        )
    assert newsletter.engine.dialect.name == "sqlite"
    with newsletter.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    assert mentions(database_bytes(newsletter), LATE)  # the scan does see the data

    report = forget_subscriber(newsletter.sessions, "LATE.reader@example.com", secret_key=SECRET)

    assert report.was_subscriber and report.residue is None
    data = database_bytes(newsletter)
    assert not mentions(data, LATE)
    assert not mentions(data, "203.0.113.77") and not mentions(data, "iphone os 17_0")
    assert mentions(data, PRIYA)  # everyone else is still there
    assert rows_mentioning(newsletter.engine, LATE) == []
    with newsletter.sessions() as session:
        assert session.scalars(select(ErasedAddress.digest)).all() == [erasure_digest(SECRET, LATE)]
        # The ledger still adds up: every planned row is still counted.
        next_campaign = session.scalar(select(Campaign.id).where(Campaign.slug == NEXT_SLUG))
        rows = session.scalar(
            select(func.count()).select_from(Delivery).where(Delivery.campaign_id == next_campaign)
        )
    campaign = newsletter.ledger.get_campaign(NEXT_SLUG)
    assert campaign is not None
    counts = newsletter.ledger.counts(campaign)
    assert counts.planned == rows == 6 and counts.sent == 6


async def test_later_events_for_an_erased_address_are_dropped(
    newsletter: Newsletter, clock: FixedClock, client: httpx.AsyncClient
) -> None:
    bounce = event(newsletter, "bounce", "sam.nguyen@example.com")
    forget_subscriber(newsletter.sessions, "sam.nguyen@example.com", secret_key=SECRET)
    clock.advance(days=20)  # SendGrid keeps reporting on earlier mail for weeks
    late = [bounce, unlinked_open("Sam.Nguyen@example.com", clock), unlinked_open(PRIYA, clock)]
    answer = await post_events(client, clock, late)
    assert answer.status_code == 200
    assert answer.json()["stored"] == 1  # Priya's
    assert rows_mentioning(newsletter.engine, "sam.nguyen@example.com") == []
    assert status_of(newsletter, "sam.nguyen@example.com") == "absent"
    # Nobody's stored event keeps the reader's IP address or user agent.
    assert rows_mentioning(newsletter.engine, "203.0.113.77") == []


def test_an_old_csv_is_imported_without_the_erased_address(
    newsletter: Newsletter, tmp_path: Path
) -> None:
    forget_subscriber(newsletter.sessions, "sam.nguyen@example.com", secret_key=SECRET)
    old = tmp_path / "old-export.csv"
    old.write_text(
        "email,first_name\n"
        "new.one@example.com,New\n"
        "Sam.Nguyen@Example.com,Sam\n"
        "new.two@example.com,Two\n"
        "sam.nguyen@example.com,Sam again\n",
        encoding="utf-8",
    )
    report = import_csv(newsletter.sessions, old, secret_key=SECRET, chunk_size=2)
    assert report.added == 2
    assert [str(problem) for problem in report.problems] == [
        f"{old}:{line}: this address was erased at the person's request (subscribers forget); "
        "only the person can subscribe it again, through the sign-up form and its "
        "confirmation email"
        for line in (3, 5)
    ]
    assert status_of(newsletter, "new.two@example.com") == "active"
    assert status_of(newsletter, "sam.nguyen@example.com") == "absent"
    # A caller without the key cannot check, so it refuses instead of letting the person in.
    with pytest.raises(SubscriberError, match="needs the secret key"):
        import_csv(newsletter.sessions, old)


def test_the_command_line_refuses_an_erased_address(
    newsletter: Newsletter, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", SECRET)
    config = ["--config", str(newsletter.settings.root / "newsletter.toml")]
    assert main([*config, "subscribers", "forget", "Sam.Nguyen@example.com"]) == 0
    assert "erased" in capsys.readouterr().out

    assert main([*config, "subscribers", "add", "sam.nguyen@example.com"]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        "error: sam.nguyen@example.com: this address was erased at the person's request "
        "(subscribers forget); only the person can subscribe it again, through the sign-up "
        "form and its confirmation email"
    ]
    csv = newsletter.settings.root / "sample-subscribers.csv"
    assert main([*config, "subscribers", "import", str(csv)]) == 1
    problems = [line for line in capsys.readouterr().err.splitlines() if ":" in line]
    assert problems == [
        f"{csv}:2: this address was erased at the person's request (subscribers forget); "
        "only the person can subscribe it again, through the sign-up form and its "
        "confirmation email"
    ]
    assert status_of(newsletter, "sam.nguyen@example.com") == "absent"
    # Forgetting again is harmless: it only scrubs again.
    assert main([*config, "subscribers", "forget", "sam.nguyen@example.com"]) == 0
    assert "already erased" in capsys.readouterr().out


async def test_only_the_persons_own_double_opt_in_brings_them_back(
    newsletter: Newsletter, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    sam = "sam.nguyen@example.com"
    forget_subscriber(newsletter.sessions, sam, secret_key=SECRET)
    assert "Check your inbox" in (await subscribe(client, sam, "Sam")).text
    assert status_of(newsletter, sam) == "pending"
    # Until the person confirms, the erasure holds: no import or add activates them.
    with pytest.raises(SubscriberErasedError):
        add_subscriber(newsletter.sessions, sam, secret_key=SECRET)
    assert "You're subscribed" in (await confirm(client, confirm_link(newsletter, sam))).text
    assert status_of(newsletter, sam) == "active"
    with newsletter.sessions() as session:
        assert session.scalar(select(func.count()).select_from(ErasedAddress)) == 0
        consent = session.scalar(select(Subscriber.consent_source).where(Subscriber.email == sam))
    assert consent == "web form (double opt-in)"
    assert add_subscriber(newsletter.sessions, sam, secret_key=SECRET).status == "active"


def test_no_row_names_the_address_after_forget_on_every_database(database_url: str) -> None:
    engine = make_engine(database_url)
    migrate(engine)
    sessions = make_sessionmaker(engine)
    clock = FixedClock()
    try:
        ann, bo = "ann.lee@example.com", "bo@example.com"
        # Before Ann is on the list: an unlinked event with her IP and user agent.
        record_events(
            sessions, [unlinked_open("Ann.Lee@example.com", clock)], clock(), secret_key="k"
        )
        add_subscriber(sessions, ann, first_name="Ann", secret_key="k")
        add_subscriber(sessions, bo, secret_key="k")
        with sessions.begin() as session:
            campaign = Campaign(slug="c", subject="s", html="h", text="t", transport="outbox")
            session.add(campaign)
            session.flush()
            ids = {
                email: id_
                for email, id_ in session.execute(select(Subscriber.email, Subscriber.id))
            }
            failed, pending = DeliveryStatus.FAILED, DeliveryStatus.PENDING
            error = f"550 5.1.1 <{ann}>: user unknown"
            session.add_all(
                [
                    Delivery(
                        campaign_id=campaign.id, subscriber_id=ids[ann], status=failed, error=error
                    ),
                    Delivery(campaign_id=campaign.id, subscriber_id=ids[bo], status=pending),
                ]
            )
        linked = {**unlinked_open(ann, clock), "subscriber_id": str(ids[ann]), "event": "bounce"}
        record_events(sessions, [linked], clock(), secret_key="k")
        assert rows_mentioning(engine, ann) != []

        forget_subscriber(sessions, ann, secret_key="k")

        assert rows_mentioning(engine, ann) == []
        assert rows_mentioning(engine, "203.0.113.77") == []
        assert rows_mentioning(engine, bo) == ["subscribers.email"]
        with sessions() as session:
            statuses = sorted(str(s) for s in session.scalars(select(Delivery.status)))
        assert statuses == ["failed", "pending"]  # the count still adds up
        again = record_events(sessions, [unlinked_open(ann, clock)], clock(), secret_key="k")
        assert (again.stored, again.erased) == (0, 1)
        assert rows_mentioning(engine, ann) == []
    finally:
        engine.dispose()
