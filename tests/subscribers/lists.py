"""What the subscriber-list tests share: a database, CSV files, the list and a ledger read back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event, func, select
from sqlalchemy.orm import Session, sessionmaker

from pipeline.store.db import make_engine, make_sessionmaker, migrate
from pipeline.store.models import Campaign, Delivery, DeliveryStatus, Subscriber
from pipeline.subscribers import SubscriberRecord, iter_subscribers

Sessions = sessionmaker[Session]


def migrated_database(path: Path) -> tuple[Engine, Sessions]:
    """A migrated SQLite database in the file ``path``, and its session factory."""
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    return engine, make_sessionmaker(engine)


def write(tmp_path: Path, text: str, name: str = "list.csv", *, bom: bool = False) -> Path:
    """A CSV file with exactly these bytes (UTF-8, optionally with Excel's BOM)."""
    path = tmp_path / name
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return path


def everyone(sessions: Sessions) -> dict[str, SubscriberRecord]:
    """Every subscriber by address."""
    return {record.email: record for record in iter_subscribers(sessions)}


def count(sessions: Sessions) -> int:
    """How many subscriber rows exist."""
    with sessions() as session:
        return int(session.scalar(select(func.count()).select_from(Subscriber)) or 0)


def selects_on_subscribers(engine: Engine) -> list[str]:
    """Collects every SELECT on the subscribers table run from now on."""
    seen: list[str] = []

    def listener(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "FROM subscribers" in statement:
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", listener)
    return seen


def ledger(sessions: Sessions, *subscriber_statuses: tuple[str, DeliveryStatus]) -> int:
    """A campaign with one delivery row per (address, status); returns the campaign id."""
    with sessions.begin() as session:
        campaign = Campaign(
            slug="hip-pain", subject="Hip pain", html="<p>x</p>", text="x", transport="outbox"
        )
        session.add(campaign)
        session.flush()
        for email, status in subscriber_statuses:
            subscriber_id = session.scalar(select(Subscriber.id).where(Subscriber.email == email))
            session.add(
                Delivery(campaign_id=campaign.id, subscriber_id=subscriber_id, status=status)
            )
        return campaign.id


def ledger_second_campaign(session: Session) -> int:
    """Another campaign, for a row in a second ledger."""
    campaign = Campaign(slug="knee-pain", subject="Knee", html="x", text="x", transport="outbox")
    session.add(campaign)
    session.flush()
    return campaign.id


def deliveries(sessions: Sessions) -> list[tuple[int | None, DeliveryStatus, str | None]]:
    """(subscriber_id, status, error) of every ledger row, in id order."""
    with sessions() as session:
        rows = session.execute(
            select(Delivery.subscriber_id, Delivery.status, Delivery.error).order_by(Delivery.id)
        )
        return [(s, DeliveryStatus(st), e) for s, st, e in rows]
