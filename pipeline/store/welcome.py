"""The welcome email's ledger: one long-lived campaign, one row per person, ever.

The welcome email is a campaign like an issue (slug ``welcome``, reserved so
no article can take it: :mod:`pipeline.content.reserved`), so it shares the
delivery states and the crash rules: a row is claimed before it is handed
over, a crash leaves it ``uncertain``, and nothing resends it blind. What
differs is how rows get there: not an audience snapshot, but one row added
in the same transaction that makes someone active (``subscribers add``, an
import, a confirmed sign-up). The unique (campaign, subscriber) key makes
"once ever" the database's rule: a second activation, a re-import or a
re-subscription finds the row there and adds nothing.

Why not a campaign per subscriber, or a ``welcome_sends`` table: the first
would give nothing a unique key could hold to, and the second would copy the
ledger's whole claim/record/expire machinery. One campaign row reuses it all.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import ColumnElement, Integer, String, exists, insert, literal, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from pipeline.content.reserved import WELCOME_SLUG
from pipeline.render import RenderedIssue
from pipeline.store.db import rowcount
from pipeline.store.ledger_links import locking_audience
from pipeline.store.models import (
    Campaign,
    CampaignStatus,
    Delivery,
    DeliveryStatus,
    Subscriber,
    SubscriberStatus,
)
from pipeline.store.row_conditions import pending


def ensure_campaign(
    sessions: sessionmaker[Session], issue: RenderedIssue, transport: str, now: datetime
) -> int:
    """The welcome campaign's id, created (or its stored email refreshed) with ``issue``.

    The stored email is refreshed because it is not a snapshot of an article
    on its day: a template edit, or a new series, should show in the next
    welcome. Rows already sent are not touched.
    """
    values = {
        "subject": issue.subject,
        "preheader": issue.preheader,
        "html": issue.html,
        "text": issue.text,
    }
    with sessions.begin() as session:
        found = session.execute(
            update(Campaign).where(Campaign.slug == WELCOME_SLUG).values(**values)
        )
        if rowcount(found):
            return _campaign_id(session)
    try:
        with sessions.begin() as session:
            session.add(
                Campaign(
                    slug=WELCOME_SLUG,
                    transport=transport,
                    status=CampaignStatus.PLANNED,
                    created_at=now,
                    **values,
                )
            )
    except IntegrityError:
        pass  # another process created it first: theirs is the same email
    with sessions() as session:
        return _campaign_id(session)


def campaign_id(sessions: sessionmaker[Session]) -> int | None:
    """The welcome campaign's id, if welcome emails were ever enabled."""
    with sessions() as session:
        return session.scalar(select(Campaign.id).where(Campaign.slug == WELCOME_SLUG))


def _campaign_id(session: Session) -> int:
    found = session.scalar(select(Campaign.id).where(Campaign.slug == WELCOME_SLUG))
    if found is None:
        raise LookupError("the welcome campaign vanished")
    return int(found)


def enrol_ids(session: Session, welcome_id: int, subscriber_ids: Collection[int]) -> int:
    """Add a pending welcome row for each of these subscribers who is active and has none."""
    if not subscriber_ids:
        return 0
    return _enrol(session, welcome_id, Subscriber.id.in_(list(subscriber_ids)))


def enrol_addresses(session: Session, welcome_id: int, addresses: Collection[str]) -> int:
    """As :func:`enrol_ids`, by (normalized) address: an import knows addresses, not ids."""
    if not addresses:
        return 0
    return _enrol(session, welcome_id, Subscriber.email.in_(list(addresses)))


def _enrol(session: Session, welcome_id: int, who: ColumnElement[bool]) -> int:
    # Runs inside the caller's transaction, the one that makes them active:
    # both happen or neither. NOT EXISTS skips anyone welcomed before; the
    # unique key is the backstop if two activations race.
    already = exists().where(
        Delivery.campaign_id == welcome_id, Delivery.subscriber_id == Subscriber.id
    )
    rows = (
        select(
            literal(welcome_id, Integer),
            Subscriber.id,
            literal(DeliveryStatus.PENDING.value, String),
            literal(0, Integer),
        )
        .where(who, Subscriber.status == SubscriberStatus.ACTIVE, ~already)
        .order_by(Subscriber.id)
    )
    session.flush()
    result = session.execute(
        insert(Delivery).from_select(
            ["campaign_id", "subscriber_id", "status", "attempts"], locking_audience(rows)
        ),
        execution_options={"preserve_rowcount": True},
    )
    return rowcount(result)


def has_pending(sessions: sessionmaker[Session], welcome_id: int) -> bool:
    """Whether someone waits for their welcome (an index lookup, cheap to poll)."""
    with sessions() as session:
        query = select(exists().where(Delivery.campaign_id == welcome_id, pending()))
        return bool(session.scalar(query))
