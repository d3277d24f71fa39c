"""Claims in flight are listed in ``in_flight_claims``; an outcome's write touches no index.

No index on ``deliveries`` names a column an outcome writes (migration 0019),
so "which rows are in flight?" is answered by the claims table: its row is
written with the claim's rows and goes with the last of them, however they
end (an outcome, given back, expired, suppressed). Both databases.
"""

from __future__ import annotations

from sqlalchemy import inspect, select, text

from pipeline.newsletter import Newsletter
from pipeline.sending.runner import DEFAULT_LEASE
from pipeline.store.ledger import OutcomeGroup
from pipeline.store.models import Delivery, DeliveryStatus, InFlightClaim
from pipeline.store.reports import Reports
from pipeline.store.writeback import _RECORDED, record_outcomes
from pipeline.subscribers import remove_subscriber
from tests.helpers import SAMPLE_SLUG
from tests.sending.ledger_claims.helpers import _clock, rows_written

SENT = DeliveryStatus.SENT


def _held(nl: Newsletter) -> set[str]:
    with nl.sessions() as session:
        return set(session.scalars(select(InFlightClaim.token)))


def _ids(claim_rows: object) -> tuple[int, ...]:
    return tuple(row.delivery_id for row in claim_rows)  # type: ignore[attr-defined]


def test_a_claim_is_listed_until_its_outcome_is_written(newsletter: Newsletter) -> None:
    campaign, _ = newsletter.plan(SAMPLE_SLUG)
    ledger, clock = newsletter.ledger, _clock(newsletter)
    first = ledger.claim(campaign.id, 2, clock(), "sender")
    second = ledger.claim(campaign.id, 3, clock(), "sender")
    assert _held(newsletter) == {first.token, second.token}
    assert [c.id for c in ledger.open_campaigns()] == [campaign.id]
    in_flight = Reports(newsletter.sessions).in_flight(campaign.id)
    assert [(h.holder, h.count) for h in in_flight] == [("sender", 5)]
    ledger.record(first, [OutcomeGroup(SENT, _ids(first.rows), "<1@x>")], clock())
    assert _held(newsletter) == {second.token}
    assert not ledger.finish_if_done(campaign.id, clock())  # the second is still out
    ledger.record(second, [OutcomeGroup(SENT, _ids(second.rows), "<2@x>")], clock())
    assert _held(newsletter) == set()
    assert ledger.finish_if_done(campaign.id, clock())


def test_rows_given_back_or_expired_leave_the_list(newsletter: Newsletter) -> None:
    campaign, _ = newsletter.plan(SAMPLE_SLUG)
    ledger, clock = newsletter.ledger, _clock(newsletter)
    given = ledger.claim(campaign.id, 2, clock(), "sender")
    ledger.release(given, [given.rows[0].delivery_id])
    assert _held(newsletter) == {given.token}  # one of its rows is still out
    ledger.release(given)
    lost = ledger.claim(campaign.id, 3, clock(), "gone")
    assert _held(newsletter) == {lost.token}
    clock.advance(seconds=DEFAULT_LEASE.total_seconds() + 1)
    assert ledger.expire_stale(campaign.id, clock(), DEFAULT_LEASE, lambda _o: False) == 3
    assert _held(newsletter) == set()
    assert ledger.renew(lost, clock()) is False  # the lease went with the claim's row
    # Its sender reports late: taken at its word, by the token the rows kept.
    ledger.record(lost, [OutcomeGroup(SENT, _ids(lost.rows), "<late@x>")], clock())
    counts = ledger.counts(campaign)
    assert (counts.sent, counts.uncertain, counts.pending) == (3, 0, 2)


def test_a_lease_renewal_keeps_a_slow_claim(newsletter: Newsletter) -> None:
    campaign, _ = newsletter.plan(SAMPLE_SLUG)
    ledger, clock = newsletter.ledger, _clock(newsletter)
    claim = ledger.claim(campaign.id, 5, clock(), "slow")
    clock.advance(seconds=DEFAULT_LEASE.total_seconds() * 3 / 4)
    assert ledger.renew(claim, clock()) is True
    clock.advance(seconds=DEFAULT_LEASE.total_seconds() * 3 / 4)
    assert ledger.expire_stale(campaign.id, clock(), DEFAULT_LEASE, lambda _o: False) == 0
    assert _held(newsletter) == {claim.token}


def test_a_claim_of_people_who_all_left_holds_nothing(newsletter: Newsletter) -> None:
    campaign, _ = newsletter.plan(SAMPLE_SLUG)
    rows_written(newsletter, campaign.id)
    ledger, clock = newsletter.ledger, _clock(newsletter)
    with newsletter.sessions() as session:
        emails = list(session.scalars(text("SELECT email FROM subscribers ORDER BY id")))
    claim = ledger.claim(campaign.id, 5, clock(), "sender")
    assert len(claim.rows) == 5
    ledger.release(claim)
    for email in emails:
        remove_subscriber(newsletter.sessions, email)
    # Their rows were pending: suppressed as they left, so nothing is claimed or held.
    assert ledger.claim(campaign.id, 5, clock(), "sender").rows == []
    assert _held(newsletter) == set()
    assert ledger.finish_if_done(campaign.id, clock())


def test_no_index_names_a_column_an_outcome_writes(newsletter: Newsletter) -> None:
    # What lets PostgreSQL write an outcome as a HOT update (no index entry at all).
    inspector = inspect(newsletter.engine)
    for index in inspector.get_indexes("deliveries"):
        named = set(index["column_names"])
        where = str(index.get("dialect_options", {}).get(f"{newsletter.engine.dialect.name}_where"))
        named |= {column for column in _RECORDED if column in where}
        assert not named & set(_RECORDED), index["name"]
    assert {index["name"] for index in inspector.get_indexes("deliveries")} >= {
        "ix_deliveries_pending",
        "ix_deliveries_claim_token",
    }


def test_an_outcome_keeps_the_token_and_on_postgresql_is_a_hot_update(
    newsletter: Newsletter,
) -> None:
    campaign, _ = newsletter.plan(SAMPLE_SLUG)
    ledger, clock = newsletter.ledger, _clock(newsletter)
    claim = ledger.claim(campaign.id, 5, clock(), "sender")
    postgresql = newsletter.engine.dialect.name == "postgresql"
    with newsletter.engine.begin() as connection:
        record_outcomes(connection, claim, [OutcomeGroup(SENT, _ids(claim.rows), "<h@x>")], clock())
        if postgresql:  # SQLite has no HOT updates (the index test above holds for it too)
            hot, updated = connection.execute(
                text(
                    "SELECT pg_stat_get_xact_tuples_hot_updated('deliveries'::regclass),"
                    " pg_stat_get_xact_tuples_updated('deliveries'::regclass)"
                )
            ).one()
            assert (updated, hot) == (5, 5)
    with newsletter.sessions() as session:
        rows = set(session.execute(select(Delivery.status, Delivery.claim_token)))
    # The token stays: clearing it would change an indexed column.
    assert rows == {(SENT, claim.token)}
