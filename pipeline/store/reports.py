"""What went wrong with a campaign, read from the ledger for the owner.

Read-only queries behind ``send``'s closing lines and ``status``: the reasons
rows failed or are in doubt, grouped, and who holds the rows in flight.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from pipeline.store.ledger import CampaignCounts
from pipeline.store.models import Delivery, DeliveryStatus, InFlightClaim
from pipeline.store.row_conditions import in_flight

#: What a row in doubt or failed without a stored reason is reported as.
NO_REASON = "no reason recorded"
#: Addresses in a reason (an SMTP reply quotes the recipient): grouped as one reason.
_ADDRESS = re.compile(r"<?[^\s<>\"'(),;:]+@[^\s<>\"'(),;:]+>?")


@dataclass(frozen=True)
class FailureReason:
    """Rows of one campaign that ended the same way for the same reason."""

    status: str  # "failed" or "uncertain"
    reason: str
    count: int
    kind: str | None = None  # the stored failure kind (see transports.base.FailureKind)

    def as_dict(self) -> dict[str, Any]:
        """One item of ``status --json``'s ``failures``."""
        return {
            "reason": self.reason,
            "count": self.count,
            "status": self.status,
            "kind": self.kind,
        }


@dataclass(frozen=True)
class InFlight:
    """Rows one sender holds in ``sending``, and since when (the oldest claim)."""

    holder: str
    since: datetime
    count: int

    def as_dict(self) -> dict[str, Any]:
        """One item of ``status --json``'s ``in_flight``."""
        return {"holder": self.holder, "since": self.since.isoformat(), "count": self.count}


@dataclass(frozen=True)
class CampaignReport:
    """A campaign's counts with the reasons behind its failures and its in-flight rows."""

    counts: CampaignCounts
    failures: tuple[FailureReason, ...] = ()
    in_flight: tuple[InFlight, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """``status --json``: the integer counts at the top level, then the details."""
        return {
            **self.counts.as_dict(),
            "failures": [f.as_dict() for f in self.failures],
            "in_flight": [h.as_dict() for h in self.in_flight],
        }


def reason_group(error: str | None) -> str:
    """The reason a row is grouped under: its error, with any address taken out.

    "550 5.1.1 <ann@example.com>: User unknown" and the same reply for bob
    are one reason, counted twice, not two reasons counted once.
    """
    if not error:
        return NO_REASON
    return _ADDRESS.sub("<address>", " ".join(error.split()))


class Reports:
    """Read-only views of the ledger for the owner."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def report(self, campaign_id: int, counts: CampaignCounts) -> CampaignReport:
        """The counts with their details; each query only when the counts say it finds rows."""
        failures = self.failure_reasons(campaign_id) if counts.failed or counts.uncertain else []
        in_flight = self.in_flight(campaign_id) if counts.sending else []
        return CampaignReport(counts, tuple(failures), tuple(in_flight))

    def failure_reasons(self, campaign_id: int) -> list[FailureReason]:
        """Failed and uncertain rows grouped by reason, most rows first."""
        wanted = (DeliveryStatus.FAILED, DeliveryStatus.UNCERTAIN)
        with self._sessions() as session:
            rows = session.execute(
                select(Delivery.status, Delivery.failure_kind, Delivery.error, func.count())
                .where(Delivery.campaign_id == campaign_id, Delivery.status.in_(wanted))
                .group_by(Delivery.status, Delivery.failure_kind, Delivery.error)
            ).all()
        # Grouped exactly by SQL, then merged once the addresses are out of the text.
        merged: Counter[tuple[str, str | None, str]] = Counter()
        for status, kind, error, count in rows:
            merged[(DeliveryStatus(status).value, kind, reason_group(error))] += int(count)
        reasons = [
            FailureReason(status=status, reason=reason, count=count, kind=kind)
            for (status, kind, reason), count in merged.items()
        ]
        return sorted(reasons, key=lambda r: (-r.count, r.status, r.reason))

    def in_flight(self, campaign_id: int) -> list[InFlight]:
        """Who holds rows in ``sending`` (``claimed_by``), how many and since when, oldest first.

        "Since" is the last renewal of the holder's oldest claim still out.
        """
        with self._sessions() as session:
            rows = session.execute(
                select(InFlightClaim.claimed_by, func.min(InFlightClaim.claimed_at), func.count())
                .join(Delivery, Delivery.claim_token == InFlightClaim.token)
                .where(in_flight(campaign_id))
                .group_by(InFlightClaim.claimed_by)
            ).all()
        held = [
            InFlight(holder=holder or "unknown", since=since, count=int(count))
            for holder, since, count in rows
            if since is not None
        ]
        return sorted(held, key=lambda h: (h.since, h.holder))
