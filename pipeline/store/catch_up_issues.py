"""The issue a catch-up reader gets, one per campaign and send slot.

A catch-up row (``deliveries.catch_up_at`` set) is sent with the issue stored
here for its slot: the article as the live campaign has it, with the series
navigation seen from the reader's side. The daily pass stores it in the
transaction that plans the rows it serves (:mod:`pipeline.store.catch_up`),
so any sender that claims such a row finds it; a resume sends exactly what
was stored, as for the campaign's own issue.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, sessionmaker

from pipeline.render import RenderedIssue
from pipeline.store.models import Campaign, CatchUpIssue


def store_issues(
    connection: Connection,
    slot: datetime,
    campaign_ids: set[int],
    render: Callable[[Sequence[int]], Mapping[int, RenderedIssue]],
) -> None:
    """Store, in the caller's transaction, the issues of ``slot`` these campaigns lack.

    Called by the daily pass with the rows it plans (store.catch_up.plan_pass),
    so rows and their issue commit together.
    """
    have = set(
        connection.execute(
            select(CatchUpIssue.campaign_id).where(CatchUpIssue.slot == slot)
        ).scalars()
    )
    wanted = sorted(campaign_ids - have)
    if not wanted:
        return
    rendered = render(wanted)
    if not rendered:
        return
    connection.execute(
        insert(CatchUpIssue),
        [
            {
                "campaign_id": cid,
                "slot": slot,
                "subject": issue.subject,
                "preheader": issue.preheader,
                "html": issue.html,
                "text": issue.text,
            }
            for cid, issue in rendered.items()
        ],
    )


def catch_up_issue(
    sessions: sessionmaker[Session], campaign_id: int, slot: datetime
) -> RenderedIssue | None:
    """The stored catch-up issue of a campaign for ``slot``, or None."""
    with sessions() as session:
        row = session.execute(
            select(Campaign.slug, CatchUpIssue)
            .join(Campaign, Campaign.id == CatchUpIssue.campaign_id)
            .where(CatchUpIssue.campaign_id == campaign_id, CatchUpIssue.slot == slot)
        ).first()
        if row is None:
            return None
        slug, stored = row
        return RenderedIssue(
            slug=slug,
            subject=stored.subject,
            preheader=stored.preheader,
            html=stored.html,
            text=stored.text,
        )
