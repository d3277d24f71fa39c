"""Write-backs match the claim token: a late sender never touches rows claimed again."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import select

from pipeline.newsletter import Newsletter
from pipeline.sending.runner import DEFAULT_LEASE
from pipeline.store.ledger import OutcomeGroup
from pipeline.store.models import Delivery, DeliveryStatus
from tests.helpers import SAMPLE_SLUG
from tests.sending.ledger_claims.helpers import _clock, rows_written


def _rows(nl: Newsletter) -> dict[int, tuple[DeliveryStatus, str | None, str | None]]:
    with nl.sessions() as session:
        rows = session.execute(
            select(Delivery.id, Delivery.status, Delivery.claim_token, Delivery.message_id)
        )
        return {i: (DeliveryStatus(s), t, m) for i, s, t, m in rows}


# -- point 3: write-backs match the claim token ----------------------------------------


def test_the_pending_count_from_its_index_agrees_with_the_full_count(
    newsletter: Newsletter,
) -> None:
    campaign, _ = newsletter.plan(SAMPLE_SLUG)
    ledger, clock = newsletter.ledger, _clock(newsletter)
    assert ledger.pending(campaign.id) == ledger.counts(campaign).pending == 5
    claim = ledger.claim(campaign.id, 2, clock(), "sender-a")
    assert ledger.pending(campaign.id) == ledger.counts(campaign).pending == 3
    ledger.release(claim)
    assert ledger.pending(campaign.id) == ledger.counts(campaign).pending == 5


def test_a_late_sender_never_touches_rows_claimed_again_by_another(newsletter: Newsletter) -> None:
    campaign, _ = newsletter.plan(SAMPLE_SLUG)
    ledger, clock = newsletter.ledger, _clock(newsletter)
    a = ledger.claim(campaign.id, 5, clock(), "sender-a")
    ids = [r.delivery_id for r in a.rows]
    # A looks dead (say, from another PID namespace); the owner resends what is in doubt.
    assert ledger.expire_stale(campaign.id, clock(), DEFAULT_LEASE, lambda o: o == "sender-a") == 5
    assert ledger.requeue_uncertain(campaign.id) == 5
    b = ledger.claim(campaign.id, 5, clock(), "sender-b")
    assert sorted(r.delivery_id for r in b.rows) == sorted(ids) and b.token != a.token
    # A was only slow: it reports every way it can, late.
    sent = DeliveryStatus.SENT
    ledger.record(a, [OutcomeGroup(sent, tuple(ids), "<a@x>")], clock())  # by token
    ledger.record(
        a,
        [OutcomeGroup(sent, tuple(ids[:2]), "<a1@x>"), OutcomeGroup(sent, (ids[2],), "<a2@x>")],
        clock(),
    )  # by id
    ledger.release(a, ids[3:])
    ledger.release(a)
    assert ledger.renew(a, clock()) is False
    assert set(_rows(newsletter).values()) == {(DeliveryStatus.SENDING, b.token, None)}
    # B's own write-back goes through.
    assert ledger.renew(b, clock()) is True
    ledger.record(b, [OutcomeGroup(sent, tuple(ids), "<b@x>")], clock())
    # The token stays on a row with its outcome (an outcome's write changes no indexed column).
    assert set(_rows(newsletter).values()) == {(sent, b.token, "<b@x>")}


def test_an_expired_sender_that_reports_later_is_taken_at_its_word(
    newsletter: Newsletter, caplog: pytest.LogCaptureFixture
) -> None:
    campaign, _ = newsletter.plan(SAMPLE_SLUG)
    ledger, clock = newsletter.ledger, _clock(newsletter)
    whole = ledger.claim(campaign.id, 2, clock(), "slow")
    parts = ledger.claim(campaign.id, 3, clock(), "slow")
    clock.advance(minutes=3)
    assert ledger.expire_stale(campaign.id, clock(), DEFAULT_LEASE, lambda _o: False) == 5
    assert ledger.counts(campaign).uncertain == 5
    sent = DeliveryStatus.SENT
    p = [r.delivery_id for r in parts.rows]
    with caplog.at_level(logging.WARNING, logger="pipeline.ledger"):
        ledger.record(
            whole, [OutcomeGroup(sent, tuple(r.delivery_id for r in whole.rows), "<w@x>")], clock()
        )
        ledger.record(
            parts, [OutcomeGroup(DeliveryStatus.FAILED, (p[0],), error="mailbox full")], clock()
        )
        ledger.release(parts, p[1:])
    counts = ledger.counts(campaign)
    assert (counts.sent, counts.failed, counts.pending, counts.uncertain) == (2, 1, 2, 0)
    said = " | ".join(r.getMessage() for r in caplog.records)
    assert "settled by their own sender" in said and "given back by their own sender" in said


def test_recording_one_issue_of_a_split_claim_leaves_the_other_in_flight(
    newsletter: Newsletter,
) -> None:
    """A claim of live and catch-up rows is sent one part at a time, under one token.

    The first part's outcome, however it is written, names only its own rows:
    the second part has not gone yet. Were it recorded with the first (failed
    here), ``send --retry-failed`` would mail it again once it went; were it
    recorded sent and the process died, it would never go at all.
    """
    campaign, _ = newsletter.plan(SAMPLE_SLUG)
    rows_written(newsletter, campaign.id)
    ledger, clock = newsletter.ledger, _clock(newsletter)
    slot = clock()
    with newsletter.sessions.begin() as session:
        rows = session.scalars(select(Delivery).order_by(Delivery.id)).all()
        for row in rows[1::2]:  # interleaved by id, as a catch-up pass may leave them
            row.catch_up_at = slot
    claim = ledger.claim(campaign.id, 5, clock(), "sender")
    live, caught_up = claim.by_issue()
    assert live.token == caught_up.token and len(live.rows) == 3 and len(caught_up.rows) == 2
    failed = DeliveryStatus.FAILED
    ledger.record(live, [OutcomeGroup(failed, tuple(r.delivery_id for r in live.rows))], clock())
    after = _rows(newsletter)
    assert {after[r.delivery_id][0] for r in live.rows} == {failed}
    assert {after[r.delivery_id] for r in caught_up.rows} == {
        (DeliveryStatus.SENDING, claim.token, None)
    }
    # Given back whole, a part gives back its own rows alone.
    ledger.release(caught_up)
    after = _rows(newsletter)
    assert {after[r.delivery_id][0] for r in live.rows} == {failed}
    assert {after[r.delivery_id] for r in caught_up.rows} == {(DeliveryStatus.PENDING, None, None)}
