"""Delivery events of any provider: the normalized record, the recorder, migration 0010."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import command

from pipeline.events import PARSERS, DeliveryEvent, EventKind, store_events
from pipeline.events.sendgrid import parse_events
from pipeline.store.db import alembic_config, make_engine, make_sessionmaker, migrate
from pipeline.store.models import Subscriber, SubscriberStatus, WebhookEvent
from pipeline.subscribers import add_subscriber

NOW = datetime(2026, 12, 9, 10, 0, tzinfo=UTC)


def test_migration_0010_keeps_sendgrid_events_under_the_new_names(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            command.upgrade(alembic_config(connection), "0009")
            connection.execute(
                sa.text(
                    "INSERT INTO webhook_events (sg_event_id, event, email, occurred_at, raw,"
                    " received_at) VALUES ('sg-1', 'bounce', 'a@example.com', :t, '{}', :t)"
                ),
                {"t": NOW},
            )
        with engine.begin() as connection:
            command.upgrade(alembic_config(connection), "0010")
        with engine.connect() as connection:
            row = connection.execute(
                sa.text("SELECT provider, provider_event_id, event FROM webhook_events")
            ).one()
        assert tuple(row) == ("sendgrid", "sg-1", "bounce")
        # The id stays unique under its new name: a replay cannot be stored twice.
        columns = {c["name"] for c in sa.inspect(engine).get_columns("webhook_events")}
        assert "sg_event_id" not in columns and {"provider", "provider_event_id"} <= columns
        with engine.begin() as connection:
            command.downgrade(alembic_config(connection), "0009")
        with engine.connect() as connection:
            again = connection.execute(sa.text("SELECT sg_event_id FROM webhook_events")).one()
        assert tuple(again) == ("sg-1",)
    finally:
        engine.dispose()


def test_sendgrid_events_are_read_into_the_normalized_record() -> None:
    parsed = parse_events(
        [
            {"event": "bounce", "email": "A@Example.com", "sg_event_id": "e1", "ip": "1.2.3.4"},
            {"event": "bounce", "type": "blocked", "email": "b@example.com", "sg_event_id": "e2"},
            {"event": "spamreport", "email": "c@example.com", "sg_event_id": "e3"},
            {"event": "open", "email": "d@example.com", "sg_event_id": "e4", "timestamp": 1},
            {"email": "no-event@example.com"},
        ],
        NOW,
    )
    first, blocked, spam, opened, junk = parsed
    assert first is not None and blocked is not None and spam is not None and opened is not None
    assert (first.provider, first.provider_event_id, first.name) == ("sendgrid", "e1", "bounce")
    assert (first.kind, first.leaves, first.email) == (
        EventKind.BOUNCED,
        SubscriberStatus.BOUNCED,
        "a@example.com",
    )
    assert "ip" not in first.raw
    assert (blocked.kind, blocked.leaves) == (EventKind.DEFERRED, None)
    assert (spam.kind, spam.leaves) == (EventKind.COMPLAINED, SubscriberStatus.COMPLAINED)
    assert (opened.kind, opened.occurred_at) == (EventKind.OPENED, datetime.fromtimestamp(1, UTC))
    assert junk is None
    assert PARSERS["sendgrid"] is parse_events


def test_the_recorder_acts_on_any_providers_event(database_url: str) -> None:
    # No SendGrid field anywhere: the recorder reads only the normalized record.
    engine = make_engine(database_url)
    try:
        migrate(engine)
        sessions = make_sessionmaker(engine)
        add_subscriber(sessions, "pat@example.com", secret_key="k")
        event = DeliveryEvent(
            provider="postmark",
            provider_event_id="postmark:77",
            name="HardBounce",
            kind=EventKind.BOUNCED,
            email="pat@example.com",
            # Long after any opt-in the subscriber could have: it is about this stay.
            occurred_at=datetime(2099, 1, 1, tzinfo=UTC),
            campaign=None,
            delivery_id=None,
            subscriber_id=None,
            detail="mailbox unknown",
            raw={"RecordType": "Bounce"},
            leaves=SubscriberStatus.BOUNCED,
        )
        report = store_events(sessions, [event, None], NOW, secret_key="k")
        again = store_events(sessions, [event], NOW, secret_key="k")
        assert (report.stored, report.suppressed, report.invalid) == (1, 1, 1)
        assert (again.stored, again.duplicates) == (0, 1)
        with sessions() as session:
            row = session.scalars(sa.select(WebhookEvent)).one()
            person = session.scalars(sa.select(Subscriber)).one()
        assert (row.provider, row.provider_event_id, row.event) == (
            "postmark",
            "postmark:77",
            "HardBounce",
        )
        assert person.status == SubscriberStatus.BOUNCED
    finally:
        engine.dispose()
