"""One subscriber at a time: add, remove (unsubscribe), forget (erase), and their ledger rows."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from pipeline.errors import InvalidAddressError, NotFoundError
from pipeline.store.models import Campaign, Delivery, DeliveryStatus, Subscriber, SubscriberStatus
from pipeline.subscribers import (
    SubscriberErasedError,
    SubscriberLeftError,
    SubscriberRecord,
    add_subscriber,
    forget_subscriber,
    remove_subscriber,
)
from tests.subscribers.lists import (
    Sessions,
    count,
    deliveries,
    everyone,
    ledger,
    ledger_second_campaign,
)

#: The secret key erased addresses are hashed with.
KEY = "subscribers-test-secret"


# -- one subscriber at a time ---------------------------------------------------------------


def test_add_creates_an_active_subscriber(sessions: Sessions) -> None:
    record = add_subscriber(sessions, " Ann@Example.com", first_name="Ann", tags=["vip", " vip "])
    assert record == SubscriberRecord(
        "ann@example.com", "Ann", None, SubscriberStatus.ACTIVE, ("vip",)
    )
    with sessions() as session:
        assert session.scalar(select(Subscriber.source)) == "cli"


def test_add_updates_a_current_subscriber(sessions: Sessions) -> None:
    add_subscriber(sessions, "ann@example.com", first_name="Ann", tags=["vip"])
    record = add_subscriber(sessions, "ANN@example.com", last_name="Lee", tags=["new"])
    assert (record.first_name, record.last_name, record.tags) == ("Ann", "Lee", ("vip", "new"))
    assert count(sessions) == 1


def test_add_keeps_a_pending_subscriber_pending(sessions: Sessions) -> None:
    with sessions.begin() as session:
        session.add(Subscriber(email="pat@example.com", status=SubscriberStatus.PENDING))
    record = add_subscriber(sessions, "pat@example.com", first_name="Pat")
    assert (record.status, record.first_name) == (SubscriberStatus.PENDING, "Pat")


@pytest.mark.parametrize(
    "status", [SubscriberStatus.UNSUBSCRIBED, SubscriberStatus.BOUNCED, SubscriberStatus.COMPLAINED]
)
def test_add_refuses_someone_who_left(sessions: Sessions, status: SubscriberStatus) -> None:
    with sessions.begin() as session:
        session.add(Subscriber(email="ann@example.com", status=status))
    with pytest.raises(SubscriberLeftError, match="subscribe again themselves"):
        add_subscriber(sessions, "ann@example.com", first_name="Ann")
    assert everyone(sessions)["ann@example.com"].status == status


def test_add_refuses_a_malformed_address(sessions: Sessions) -> None:
    with pytest.raises(InvalidAddressError):
        add_subscriber(sessions, "ann.example.com")


def test_remove_unsubscribes_keeps_the_row_and_suppresses_pending_rows(
    sessions: Sessions,
) -> None:
    add_subscriber(sessions, "ann@example.com")
    add_subscriber(sessions, "bo@example.com")
    ledger(
        sessions,
        ("ann@example.com", DeliveryStatus.PENDING),
        ("bo@example.com", DeliveryStatus.PENDING),
    )
    remove_subscriber(sessions, "Ann@Example.com")
    with sessions() as session:
        ann = session.scalar(select(Subscriber).where(Subscriber.email == "ann@example.com"))
        assert ann is not None
        assert ann.status == SubscriberStatus.UNSUBSCRIBED
        assert ann.unsubscribed_at is not None
        ann_id = ann.id
    rows = deliveries(sessions)
    assert [(s == ann_id, status) for s, status, _ in rows] == [
        (True, DeliveryStatus.SUPPRESSED),
        (False, DeliveryStatus.PENDING),
    ]


def test_remove_leaves_rows_already_sent_alone(sessions: Sessions) -> None:
    add_subscriber(sessions, "ann@example.com")
    ledger(sessions, ("ann@example.com", DeliveryStatus.SENT))
    remove_subscriber(sessions, "ann@example.com")
    assert [status for _, status, _ in deliveries(sessions)] == [DeliveryStatus.SENT]


def test_remove_of_an_unknown_address_is_not_found(sessions: Sessions) -> None:
    with pytest.raises(NotFoundError, match=r"nobody@example\.com"):
        remove_subscriber(sessions, "nobody@example.com")


def test_forget_erases_the_person_but_keeps_the_ledger_counts(sessions: Sessions) -> None:
    add_subscriber(sessions, "ann@example.com", first_name="Ann")
    add_subscriber(sessions, "bo@example.com")
    campaign_id = ledger(
        sessions,
        ("ann@example.com", DeliveryStatus.PENDING),
        ("bo@example.com", DeliveryStatus.PENDING),
    )
    with sessions.begin() as session:
        session.add(
            Delivery(
                campaign_id=ledger_second_campaign(session),
                subscriber_id=session.scalar(
                    select(Subscriber.id).where(Subscriber.email == "ann@example.com")
                ),
                status=DeliveryStatus.FAILED,
                error="550 ann@example.com: no such user",
            )
        )
    forget_subscriber(sessions, "ann@example.com", secret_key=KEY)
    assert set(everyone(sessions)) == {"bo@example.com"}
    rows = deliveries(sessions)
    assert len(rows) == 3
    assert rows[0] == (None, DeliveryStatus.SUPPRESSED, None)
    assert rows[1][1] == DeliveryStatus.PENDING
    assert rows[2][0] is None
    assert rows[2][1] == DeliveryStatus.FAILED
    assert "ann@example.com" not in (rows[2][2] or "")
    with sessions() as session:
        assert session.get(Campaign, campaign_id) is not None


def test_forget_of_an_unknown_address_is_not_found(sessions: Sessions) -> None:
    with pytest.raises(NotFoundError):
        forget_subscriber(sessions, "nobody@example.com", secret_key=KEY)


def test_a_forgotten_address_is_not_added_again(sessions: Sessions) -> None:
    # Only the person's own double opt-in brings it back (tests/subscribers/test_erasure.py).
    add_subscriber(sessions, "ann@example.com", first_name="Ann")
    remove_subscriber(sessions, "ann@example.com")
    forget_subscriber(sessions, "ann@example.com", secret_key=KEY)
    with pytest.raises(SubscriberErasedError, match="erased at the person's request"):
        add_subscriber(sessions, "Ann@Example.com", secret_key=KEY)
    assert count(sessions) == 0
