"""Acting on failed deliveries: sending again what may be fixed, bouncing who is gone.

Which failure kinds may be retried is the transports' knowledge
(``transports.base.RETRYABLE_FAILURES``); the store only takes the list, so
the ledger never parses an error text to decide.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from pipeline.store.db import rowcount
from pipeline.store.leavers import suppress_for
from pipeline.store.models import (
    LEFT_STATUSES,
    Delivery,
    DeliveryStatus,
    Subscriber,
    SubscriberStatus,
)
from pipeline.store.row_conditions import back_to_pending

#: Bounded IN lists: a batch can hold thousands of rows.
_CHUNK = 500


def requeue_failed(
    sessions: sessionmaker[Session], campaign_id: int, kinds: Collection[str]
) -> int:
    """Failed rows of these kinds back to pending; returns how many.

    Rows without a kind (failed before kinds were stored) are never touched:
    nobody can say whether they were refused for the person.
    """
    if not kinds:
        return 0
    with sessions.begin() as session:
        result = session.execute(
            update(Delivery)
            .where(
                Delivery.campaign_id == campaign_id,
                Delivery.status == DeliveryStatus.FAILED,
                Delivery.failure_kind.in_(sorted(kinds)),
            )
            .values({**back_to_pending(), "failure_kind": None}),
            execution_options={"synchronize_session": False},
        )
        return rowcount(result)


def mark_bounced(
    sessions: sessionmaker[Session], subscriber_ids: Sequence[int], now: datetime
) -> int:
    """Subscribers whose mailbox does not exist become ``bounced``; returns how many changed.

    As a bounce webhook does: someone who already left keeps that (more
    telling) status, a confirmation link in their mailbox can no longer bring
    them back, and their rows still pending in any campaign are suppressed.
    """
    ids = sorted(set(subscriber_ids))
    changed = 0
    with sessions.begin() as session:
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            result = session.execute(
                update(Subscriber)
                .where(Subscriber.id.in_(chunk), Subscriber.status.not_in(LEFT_STATUSES))
                .values(
                    status=SubscriberStatus.BOUNCED,
                    unsubscribed_at=now,
                    confirm_sent_at=None,
                    updated_at=now,
                ),
                execution_options={"synchronize_session": False},
            )
            changed += rowcount(result)
            suppress_for(session, chunk)
    return changed
