"""How ``send`` and ``status`` show a campaign to its owner: the table and the lines below it.

The table holds only counts, so it fits an 80-column terminal: the campaign
column is the one that gives way, cut with an ellipsis and never folded onto a
second line. What does not fit a cell (why rows failed, who holds rows in
flight) goes on plain lines below it, one fact per line, that scripts can
grep and that a terminal never breaks in the middle of a slug.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from rich.table import Table

from pipeline.sending.transports.base import RETRYABLE_FAILURES
from pipeline.store.catch_up import CatchUpCount
from pipeline.store.ledger import CampaignCounts
from pipeline.store.reports import CampaignReport, FailureReason, InFlight

#: The count columns, in the order of the delivery guarantee's sum.
COUNT_COLUMNS = ("planned", "pending", "sending", "sent", "failed", "uncertain", "suppressed")
#: Reasons listed per campaign; the rest are summed into one line (all are in ``--json``).
MAX_REASONS = 10
#: A longer host name keeps its start and its end (where pods and containers differ).
_HOST_WIDTH = 28


def counts_table(rows: Sequence[CampaignCounts]) -> Table:
    """One row per campaign: the slug (cut with "…" when the terminal is narrow), then counts."""
    # No borders: at 80 columns every character goes to the slug.
    table = Table(box=None, pad_edge=False, padding=(0, 1), header_style="bold")
    # Wrappable, so rich may narrow it; a slug has no spaces, so it is cut, not wrapped.
    table.add_column("campaign", overflow="ellipsis", min_width=12)
    for name in COUNT_COLUMNS:
        # min_width: the counts keep their width; only the campaign column gives way.
        table.add_column(name, justify="right", no_wrap=True, min_width=len(name))
    for c in rows:
        values = (c.planned, c.pending, c.sending, c.sent, c.failed, c.uncertain, c.suppressed)
        table.add_row(c.slug, *(str(n) for n in values))
    return table


def short_holder(identity: str) -> str:
    """A sender's identity as a person reads it: ``host:pid``.

    Identities carry more (boot id, PID namespace, a nonce) so that machines
    can tell senders apart; a person needs the host and the process.
    """
    host, _, rest = identity.partition(":")
    pid = rest.partition(":")[0]
    if len(host) > _HOST_WIDTH:
        keep = (_HOST_WIDTH - 1) // 2
        host = f"{host[:keep]}…{host[-keep:]}"
    return f"{host}:{pid}" if pid.isdigit() else host or identity


def _when(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def failure_lines(slug: str, failures: Sequence[FailureReason]) -> list[str]:
    """``SLUG: COUNT STATUS: REASON``, most rows first; the tail summed in one line."""
    lines = [f"{slug}: {f.count} {f.status}: {f.reason}" for f in failures[:MAX_REASONS]]
    rest = failures[MAX_REASONS:]
    if rest:
        total = sum(f.count for f in rest)
        lines.append(f"{slug}: {total} more in {len(rest)} other reason(s) (status {slug} --json)")
    return lines


def in_flight_lines(slug: str, holders: Sequence[InFlight]) -> list[str]:
    """``SLUG: COUNT sending, held by HOST:PID since TIME`` per sender."""
    return [
        f"{slug}: {h.count} sending, held by {short_holder(h.holder)} since {_when(h.since)}"
        for h in holders
    ]


def retryable(failures: Sequence[FailureReason]) -> int:
    """How many failed rows ``send --retry-failed`` would send again."""
    kinds = {kind.value for kind in RETRYABLE_FAILURES}
    return sum(f.count for f in failures if f.status == "failed" and f.kind in kinds)


def detail_lines(report: CampaignReport) -> list[str]:
    """Everything below the table for one campaign: rows in flight, then failure reasons."""
    slug = report.counts.slug
    return in_flight_lines(slug, report.in_flight) + failure_lines(slug, report.failures)


def catch_up_line(caught_up: dict[str, CatchUpCount], report: CampaignReport) -> str | None:
    """``SLUG: catch-up: SENT sent of PLANNED`` below the table, for a campaign that has any.

    Those rows are in the table's counts too: a catch-up send is a row of the
    article's own campaign, so this says how many of them came that way.
    """
    count = caught_up.get(report.counts.slug)
    if count is None:
        return None
    return f"{report.counts.slug}: catch-up: {count.sent} sent of {count.planned}"
