"""Campaigns a run left with rows pending: why, and when the scheduler tries again.

A run stops early for two kinds of reasons. Most pass by themselves (SendGrid
answering 5xx until its retries ran out, a 429 budget used up, SMTP 4xx
deferrals, the network gone): the scheduler tries the campaign again after 1
minute (its poll runs every few seconds, so well within 2 minutes), then 2, 4,
8, 16 and every 30 minutes until a run leaves nothing pending. Some need a
person (the provider refused the API key or the sender
address): the campaign waits for its owner, who answers with ``send SLUG
--yes`` or ``schedule resume``. Taking a due retry is one guarded UPDATE, like
a one-off send, so a retry is started once even if two schedulers overlap.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from pipeline.store.db import rowcount
from pipeline.store.models import Campaign, CampaignStop, WaitingFor

#: The first retry after a stop; each further stop in a row doubles it.
FIRST_RETRY = timedelta(minutes=1)
#: The longest wait between retries.
MAX_RETRY = timedelta(minutes=30)


def retry_delay(stops_in_a_row: int) -> timedelta:
    """How long the ``n``-th stop in a row waits: 1, 2, 4, 8, 16, then 30 minutes."""
    doublings = min(max(stops_in_a_row, 1) - 1, 10)  # 1 min * 2**10 is far past the cap
    return min(FIRST_RETRY * (1 << doublings), MAX_RETRY)


@dataclass(frozen=True)
class StopRecord:
    """One stopped campaign: its reason and what it waits for."""

    campaign_id: int
    slug: str
    reason: str
    waiting_for: WaitingFor
    stopped_at: datetime
    retry_at: datetime | None
    retries: int

    def as_dict(self, zone: tzinfo = UTC) -> dict[str, object]:
        """The ``stopped`` object of ``status --json``, times in ``zone``."""
        return {
            "reason": self.reason,
            "waiting_for": self.waiting_for.value,
            "stopped_at": self.stopped_at.astimezone(zone).isoformat(),
            "retry_at": self.retry_at.astimezone(zone).isoformat() if self.retry_at else None,
            "retries": self.retries,
        }

    def describe(self, zone: tzinfo = UTC) -> str:
        """One line for people: why it stopped and what happens next."""
        if self.waiting_for is WaitingFor.OWNER:
            return (
                f"{self.slug}: stopped: {self.reason}; waiting for the owner (fix it, then"
                f" `newsletter send {self.slug} --yes` or `newsletter schedule resume`)"
            )
        if self.retry_at is None:
            return f"{self.slug}: stopped: {self.reason}; the scheduler is retrying it now"
        at = self.retry_at.astimezone(zone).isoformat()
        return (
            f"{self.slug}: stopped: {self.reason}; the scheduler retries it at {at}"
            f" (retry {self.retries}; waits double up to 30 minutes)"
        )


def _record(row: CampaignStop, slug: str) -> StopRecord:
    return StopRecord(
        campaign_id=row.campaign_id,
        slug=slug,
        reason=row.reason,
        waiting_for=row.waiting_for,
        stopped_at=row.stopped_at,
        retry_at=row.retry_at,
        retries=row.retries,
    )


class StopStore:
    """The ``campaign_stops`` table."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def record(
        self, campaign_id: int, reason: str, now: datetime, *, needs_owner: bool
    ) -> StopRecord:
        """Note a run that stopped with rows pending; a retry backs off from the last one."""
        for attempt in range(2):
            try:
                with self._sessions.begin() as session:
                    row = session.get(CampaignStop, campaign_id)
                    if row is None:
                        row = CampaignStop(campaign_id=campaign_id, retries=0)
                        session.add(row)
                    row.reason = reason
                    row.stopped_at = now
                    if needs_owner:
                        row.waiting_for = WaitingFor.OWNER
                        row.retry_at = None
                        row.retries = 0
                    else:
                        row.waiting_for = WaitingFor.RETRY
                        row.retries = (row.retries or 0) + 1
                        row.retry_at = now + retry_delay(row.retries)
                    session.flush()
                    slug = session.scalar(select(Campaign.slug).where(Campaign.id == campaign_id))
                    return _record(row, slug or "")
            except IntegrityError:
                if attempt:
                    raise  # another sender inserted it first: the second try updates it
        raise AssertionError("unreachable")

    def after_run(
        self,
        campaign_id: int,
        now: datetime,
        *,
        pending: int,
        stopped: str | None,
        needs_owner: str | None,
        asked_to_stop: bool,
    ) -> StopRecord | None:
        """Note how a run ended: cleared when nothing is pending, else why it stopped.

        ``needs_owner`` is the reason a person must act (credentials or sender
        refused); ``stopped`` any other reason the run gave.
        """
        reason = needs_owner or stopped
        if pending == 0 or reason is None:
            self.clear(campaign_id)
            return None
        if asked_to_stop and needs_owner is None:
            # Ctrl-C or SIGTERM: nothing went wrong. As before, whatever is
            # pending resumes on `send` or when a scheduler next starts.
            return self.get(campaign_id)
        return self.record(campaign_id, reason, now, needs_owner=needs_owner is not None)

    def clear(self, campaign_id: int) -> bool:
        """Forget a campaign's stop (it finished, or its owner sent by hand)."""
        with self._sessions.begin() as session:
            result = session.execute(
                delete(CampaignStop).where(CampaignStop.campaign_id == campaign_id)
            )
            return rowcount(result) > 0

    def get(self, campaign_id: int) -> StopRecord | None:
        """The stop of one campaign, if it has one."""
        with self._sessions() as session:
            found = session.execute(
                select(CampaignStop, Campaign.slug)
                .join(Campaign, Campaign.id == CampaignStop.campaign_id)
                .where(CampaignStop.campaign_id == campaign_id)
            ).first()
            return _record(found[0], found[1]) if found else None

    def all(self) -> dict[int, StopRecord]:
        """Every stopped campaign, by campaign id."""
        with self._sessions() as session:
            rows = session.execute(
                select(CampaignStop, Campaign.slug).join(
                    Campaign, Campaign.id == CampaignStop.campaign_id
                )
            )
            return {row.campaign_id: _record(row, slug) for row, slug in rows}

    def due(self, now: datetime) -> list[StopRecord]:
        """Stops whose retry time has come, oldest first."""
        with self._sessions() as session:
            rows = session.execute(
                select(CampaignStop, Campaign.slug)
                .join(Campaign, Campaign.id == CampaignStop.campaign_id)
                .where(
                    CampaignStop.waiting_for == WaitingFor.RETRY,
                    CampaignStop.retry_at <= now,
                )
                .order_by(CampaignStop.retry_at, CampaignStop.campaign_id)
            )
            return [_record(row, slug) for row, slug in rows]

    def take(self, stop: StopRecord) -> bool:
        """Start a due retry: False if someone else took it, or it changed, since ``due``."""
        with self._sessions.begin() as session:
            result = session.execute(
                update(CampaignStop)
                .where(
                    CampaignStop.campaign_id == stop.campaign_id,
                    CampaignStop.waiting_for == WaitingFor.RETRY,
                    CampaignStop.retry_at == stop.retry_at,
                )
                .values(retry_at=None)
            )
            return rowcount(result) == 1

    def release_owner_waits(self, now: datetime) -> list[str]:
        """The owner answered (``schedule resume``): retry those campaigns now; their slugs."""
        with self._sessions.begin() as session:
            slugs = list(
                session.scalars(
                    select(Campaign.slug)
                    .join(CampaignStop, Campaign.id == CampaignStop.campaign_id)
                    .where(CampaignStop.waiting_for == WaitingFor.OWNER)
                    .order_by(Campaign.id)
                )
            )
            session.execute(
                update(CampaignStop)
                .where(CampaignStop.waiting_for == WaitingFor.OWNER)
                .values(waiting_for=WaitingFor.RETRY, retry_at=now, retries=0)
            )
            return slugs
