"""The receipt after each campaign ends: the counts as ``status --json`` shows them,
failures grouped by reason, and what to do about each reason.

Sent once per campaign ever (its subject is the slug), when a run leaves
nothing pending or in flight. The counts come from
:func:`pipeline.status.campaign_status`, the function behind ``status --json``,
and the receipt ends with that very object, so the two can never disagree.
"""

from __future__ import annotations

import json

from pipeline.newsletter import Newsletter
from pipeline.owner.notify import Message, notify
from pipeline.sending.transports.base import RETRYABLE_FAILURES, FailureKind
from pipeline.status import campaign_status
from pipeline.store.ledger import CampaignCounts
from pipeline.store.models import WaitingFor
from pipeline.store.reports import FailureReason
from pipeline.store.stops import StopRecord

#: The integer counts of ``status --json``, in the order of the delivery guarantee.
COUNTS = ("planned", "pending", "sending", "sent", "failed", "uncertain", "suppressed")


def advice(slug: str, failure: FailureReason) -> str:
    """What the owner can do about rows that ended this way."""
    if failure.status == "uncertain":
        return (
            "these may or may not have arrived; `newsletter send "
            f"{slug} --yes --resend-uncertain` sends them again (a duplicate rather than a miss)"
        )
    kind = failure.kind
    if kind in {k.value for k in RETRYABLE_FAILURES}:
        return (
            "the provider or the network failed, not the address; once it works again, "
            f"`newsletter send {slug} --yes --retry-failed` sends these again"
        )
    if kind == FailureKind.RECIPIENT.value:
        return "the address was refused for the person (unknown or invalid); nothing to resend"
    if kind == FailureKind.MESSAGE.value:
        return (
            "the mail server refused this message after accepting the address; check its "
            "reply above (size, content, policy) with your provider"
        )
    if kind == FailureKind.DUPLICATE.value:
        return "the same address was on the list twice; the other copy went, nothing to do"
    return f"see `newsletter status {slug}` for the details"


def receipt(newsletter: Newsletter, slug: str) -> Message:
    """The receipt of one campaign, from the ledger as it is now."""
    [report] = newsletter.reports(slug)
    status = campaign_status(newsletter, report)
    counts = ", ".join(f"{status[name]} {name}" for name in COUNTS)
    lines = [
        f"The campaign {slug} ({newsletter.settings.clinic.name}) has ended.",
        "",
        f"Counts: {counts}.",
    ]
    if report.failures:
        lines += ["", "What did not go, by reason, and what to do:"]
        for failure in report.failures:
            lines.append(f"- {failure.count} {failure.status}: {failure.reason}")
            lines.append(f"  what to do: {advice(slug, failure)}")
    else:
        lines += ["", "Nothing failed and nothing is in doubt."]
    lines += [
        "",
        f"Archive: {newsletter.archive_url(slug)}",
        "",
        f"As `newsletter status {slug} --json` shows it:",
        json.dumps(status, sort_keys=True),
    ]
    problems = status["failed"] + status["uncertain"]
    summary = f"{slug}: {status['sent']} sent of {status['planned']}" + (
        f", {problems} failed or uncertain" if problems else ""
    )
    return Message(
        kind="receipt",
        about=slug,
        subject=f"Sent: {slug}: {status['sent']} of {status['planned']} delivered to the provider",
        lines=tuple(lines),
        summary=summary,
        once_a_day=False,
    )


def after_run(
    newsletter: Newsletter, slug: str, counts: CampaignCounts, stop: StopRecord | None
) -> None:
    """After a run: the receipt once the campaign has ended; an alert if it waits for the owner."""
    from pipeline.owner.alerts import alert_needs_owner

    if counts.pending == 0 and counts.sending == 0:
        send_receipt(newsletter, slug)
    elif stop is not None and stop.waiting_for is WaitingFor.OWNER:
        alert_needs_owner(newsletter, stop)


def send_receipt(newsletter: Newsletter, slug: str) -> bool:
    """Tell the owner a campaign ended (once per campaign); True when sent now."""
    return notify(newsletter, receipt(newsletter, slug))
