"""A campaign's status as ``status --json`` shows it: one function, so the owner's
receipt and the command can never disagree.

The ledger's counts and the failure reasons (:mod:`pipeline.store.reports`),
the provider's webhook counts beside them, and the campaign's stop if it has one.
"""

from __future__ import annotations

from typing import Any

from pipeline.events import event_counts
from pipeline.newsletter import Newsletter
from pipeline.store.catch_up import CatchUpCount, catch_up_counts
from pipeline.store.reports import CampaignReport
from pipeline.store.stops import StopRecord, StopStore


def campaign_status(
    newsletter: Newsletter,
    report: CampaignReport,
    stops: dict[str, StopRecord] | None = None,
    caught_up: dict[int, CatchUpCount] | None = None,
) -> dict[str, Any]:
    """One campaign's ``status --json`` object.

    ``stops`` and ``caught_up`` (catch-up counts by campaign id) may be read
    once by a caller showing many campaigns; otherwise they are read here.
    """
    if caught_up is None:
        caught_up = catch_up_counts(newsletter.sessions)
    if stops is None:
        stops = {stop.slug: stop for stop in StopStore(newsletter.sessions).all().values()}
    counts = report.counts
    campaign = newsletter.ledger.get_campaign(counts.slug)
    extra = event_counts(newsletter.sessions, campaign.id) if campaign else {}
    stop = stops.get(counts.slug)
    zone = newsletter.settings.schedule.tz
    # Catch-up sends are rows of the article's own campaign (in the counts
    # above too); this says how many came that way.
    caught = caught_up.get(campaign.id) if campaign else None
    catch_up = {"planned": caught.planned if caught else 0, "sent": caught.sent if caught else 0}
    return {
        **report.as_dict(),
        **extra,
        "stopped": stop.as_dict(zone) if stop else None,
        "catch_up": catch_up,
    }
