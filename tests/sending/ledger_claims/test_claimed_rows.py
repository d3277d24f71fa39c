"""A campaign's rows are written when a claim reaches its people (``pipeline.store.snapshot``).

The plan fixes who is in the campaign; each claim writes its people's rows,
already ``sending``. Until then they count as pending everywhere, the
campaign stays open, and the audience stays the one of the moment of
planning: whoever joins or comes back later is not in it, whoever leaves is
suppressed. Both databases.
"""

from __future__ import annotations

from sqlalchemy import func, insert, select, update

from pipeline.newsletter import Newsletter
from pipeline.store.models import Delivery, DeliveryStatus, Subscriber, SubscriberStatus
from pipeline.subscribers import add_subscriber, remove_subscriber
from tests.helpers import SAMPLE_SLUG
from tests.sending.ledger_claims.helpers import _clock


def _rows(nl: Newsletter) -> dict[int | None, DeliveryStatus]:
    with nl.sessions() as session:
        rows = session.execute(select(Delivery.subscriber_id, Delivery.status))
        return {subscriber: DeliveryStatus(status) for subscriber, status in rows}


def _ids(nl: Newsletter) -> list[int]:
    with nl.sessions() as session:
        return list(session.scalars(select(Subscriber.id).order_by(Subscriber.id)))


def test_the_plan_writes_no_row_and_counts_everyone_pending(newsletter: Newsletter) -> None:
    campaign, _ = newsletter.plan(SAMPLE_SLUG)
    assert _rows(newsletter) == {}
    counts = newsletter.ledger.counts(campaign)
    assert (counts.planned, counts.pending, counts.sending) == (5, 5, 0)
    assert newsletter.ledger.pending(campaign.id) == 5
    assert [c.id for c in newsletter.ledger.open_campaigns()] == [campaign.id]
    assert not newsletter.ledger.finish_if_done(campaign.id, _clock(newsletter)())


def test_each_claim_writes_its_peoples_rows_in_order(newsletter: Newsletter) -> None:
    campaign, _ = newsletter.plan(SAMPLE_SLUG)
    ledger, clock = newsletter.ledger, _clock(newsletter)
    first = ledger.claim(campaign.id, 2, clock(), "sender")
    ids = _ids(newsletter)
    assert [row.subscriber_id for row in first.rows] == ids[:2]
    assert _rows(newsletter) == {ids[0]: DeliveryStatus.SENDING, ids[1]: DeliveryStatus.SENDING}
    counts = ledger.counts(campaign)
    assert (counts.planned, counts.pending, counts.sending) == (5, 3, 2)
    rest = ledger.claim(campaign.id, 10, clock(), "sender")
    assert [row.subscriber_id for row in rest.rows] == ids[2:]
    assert ledger.claim(campaign.id, 10, clock(), "sender").rows == []
    # Everyone has a row: nothing is counted twice, nothing is left open but in flight.
    counts = ledger.counts(campaign)
    assert (counts.planned, counts.pending, counts.sending) == (5, 0, 5)


def test_the_audience_is_the_one_of_the_moment_of_planning(newsletter: Newsletter) -> None:
    ids = _ids(newsletter)
    remove_subscriber(newsletter.sessions, _email(newsletter, ids[1]))  # gone before the plan
    campaign, _ = newsletter.plan(SAMPLE_SLUG)
    add_subscriber(newsletter.sessions, "late@example.com")  # joined after it
    with newsletter.sessions.begin() as session:  # came back after it
        session.execute(
            update(Subscriber).where(Subscriber.id == ids[1]).values(status=SubscriberStatus.ACTIVE)
        )
    remove_subscriber(newsletter.sessions, _email(newsletter, ids[3]))  # left after it
    # Leaving before a claim reached them: suppressed at once, still counted.
    assert _rows(newsletter) == {ids[3]: DeliveryStatus.SUPPRESSED}
    counts = newsletter.ledger.counts(campaign)
    assert (counts.planned, counts.pending, counts.suppressed) == (4, 3, 1)
    claim = newsletter.ledger.claim(campaign.id, 10, _clock(newsletter)(), "sender")
    assert [row.subscriber_id for row in claim.rows] == [ids[0], ids[2], ids[4]]
    counts = newsletter.ledger.counts(campaign)
    assert (counts.planned, counts.sending, counts.suppressed) == (4, 3, 1)


def test_a_row_written_for_someone_before_their_claim_is_kept(newsletter: Newsletter) -> None:
    """A catch-up send of this part planned for someone the claims had not reached."""
    campaign, _ = newsletter.plan(SAMPLE_SLUG)
    ids = _ids(newsletter)
    slot = _clock(newsletter)()
    with newsletter.sessions.begin() as session:
        session.execute(
            insert(Delivery).values(
                campaign_id=campaign.id,
                subscriber_id=ids[2],
                status=DeliveryStatus.PENDING,
                attempts=0,
                catch_up_at=slot,
            )
        )
    ledger, clock = newsletter.ledger, _clock(newsletter)
    live = ledger.claim(campaign.id, 10, clock(), "sender")
    assert [row.subscriber_id for row in live.rows] == [ids[0], ids[1], ids[3], ids[4]]
    # Then the existing row, once everyone has one: its own issue, sent once.
    caught_up = ledger.claim(campaign.id, 10, clock(), "sender")
    assert [(row.subscriber_id, row.catch_up_at) for row in caught_up.rows] == [(ids[2], slot)]
    with newsletter.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Delivery)) == 5


def test_include_new_writes_the_audience_first(newsletter: Newsletter) -> None:
    campaign, _ = newsletter.plan(SAMPLE_SLUG)
    newsletter.ledger.claim(campaign.id, 2, _clock(newsletter)(), "sender")
    add_subscriber(newsletter.sessions, "late@example.com")
    assert newsletter.ledger.add_new_subscribers(campaign.id) == 1
    counts = newsletter.ledger.counts(campaign)
    assert (counts.planned, counts.pending, counts.sending) == (6, 4, 2)
    assert len(_rows(newsletter)) == 6


def _email(nl: Newsletter, subscriber_id: int) -> str:
    with nl.sessions() as session:
        email = session.scalar(select(Subscriber.email).where(Subscriber.id == subscriber_id))
        assert email is not None
        return email
