"""Faults the owner must hear about, each at most once a day per subject.

* ``queue_empty``: nothing queued is due for the next firing, 48 hours before it;
* ``firing_skipped``: a firing was later than the catch-up grace and skipped;
* ``needs_owner``: a campaign stopped because the provider refused the
  credentials or the sender (it waits for the owner);
* ``brake``: the bounce brake paused a campaign (it waits for the owner);
* ``stalled``: a campaign still has pending rows an hour after it started;
* ``lease``: the scheduler lost its lease and got it back.

:func:`watch` is the scheduler's job that looks for the first and the fourth
and sends the heads-up (:mod:`pipeline.owner.hold`); the others are called
where the fault happens. Every function here swallows its own errors: telling
the owner must never break the scheduler.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pipeline.config import load_settings
from pipeline.content.queue import next_firing, queue_order
from pipeline.newsletter import Newsletter
from pipeline.owner.notify import Message, notify
from pipeline.schedule.triggers import recurring_trigger
from pipeline.sending.brake import is_brake
from pipeline.store.models import WaitingFor
from pipeline.store.notifications import stalled_campaigns
from pipeline.store.oneoffs import schedule_plan
from pipeline.store.scheduler_state import SchedulerStateStore
from pipeline.store.stops import StopRecord, StopStore

log = logging.getLogger("pipeline.owner")

#: How long before a firing an empty queue is reported.
QUEUE_WARNING = timedelta(hours=48)
#: A running campaign with pending rows this long after it started is reported.
STALLED_AFTER = timedelta(hours=1)


def _local(newsletter: Newsletter, moment: datetime) -> str:
    return moment.astimezone(newsletter.settings.schedule.tz).isoformat()


def check_queue(newsletter: Newsletter) -> bool:
    """Alert when the next firing (within 48 h) has no article due; True when sent now."""
    now = newsletter.clock()
    schedule = newsletter.settings.schedule
    queue = queue_order(newsletter.articles().articles, newsletter.ledger.sent_slugs())
    plan = schedule_plan(newsletter.sessions)  # one-offs, and firings the owner held
    trigger = recurring_trigger(schedule)
    firing = next_firing(queue, trigger, now, plan.one_offs, plan.held_firings)
    if firing is None or firing.slug is not None or firing.at - now > QUEUE_WARNING:
        return False
    at = _local(newsletter, firing.at)
    why = f"{len(queue)} queued, none due by then" if queue else "the queue is empty"
    return notify(
        newsletter,
        Message(
            kind="queue_empty",
            about=firing.at.astimezone(UTC).isoformat(),
            subject=f"Nothing to send at {at}",
            lines=(
                f"The schedule fires at {at}, but no queued article is due then ({why}).",
                "Nothing will be sent unless you add an article (status: queued) or move a"
                " send_after date; `newsletter queue` shows what is waiting.",
            ),
            summary=f"next firing {at}: nothing due ({why})",
        ),
    )


def check_stalled(newsletter: Newsletter) -> int:
    """Alert about running campaigns with pending rows an hour after they started."""
    now = newsletter.clock()
    told = 0
    for slug, started in stalled_campaigns(newsletter.sessions, now - STALLED_AFTER):
        campaign = newsletter.ledger.get_campaign(slug)
        if campaign is None:
            continue
        counts = newsletter.ledger.counts(campaign)
        told += notify(
            newsletter,
            Message(
                kind="stalled",
                about=slug,
                subject=f"Not finished: {slug} has {counts.pending} unsent",
                lines=(
                    f"The campaign {slug} started at {_local(newsletter, started)} and still"
                    f" has {counts.pending} of {counts.planned} not sent.",
                    f"`newsletter status {slug}` says why; `newsletter send {slug} --yes`"
                    " resumes it (nothing is sent twice).",
                ),
                summary=f"{slug}: {counts.pending} of {counts.planned} still pending",
            ),
        )
    return told


def alert_needs_owner(newsletter: Newsletter, stop: StopRecord) -> bool:
    """A campaign stopped for credentials, a refused sender or the brake: it waits for the owner."""
    if is_brake(stop.reason):
        return alert_brake(newsletter, stop)
    return notify(
        newsletter,
        Message(
            kind="needs_owner",
            about=stop.slug,
            subject=f"Stopped: {stop.slug} waits for you",
            lines=(
                f"The campaign {stop.slug} stopped: {stop.reason}.",
                "Nothing more is sent until you act: fix the credentials or the sender"
                f" address, then run `newsletter send {stop.slug} --yes` or"
                " `newsletter schedule resume`.",
            ),
            summary=f"{stop.slug}: stopped: {stop.reason}",
        ),
    )


def alert_brake(newsletter: Newsletter, stop: StopRecord) -> bool:
    """The bounce brake paused a campaign: the numbers, and how to go on after a look."""
    return notify(
        newsletter,
        Message(
            kind="brake",
            about=stop.slug,
            subject=f"Paused: {stop.slug}: too many bounces or complaints",
            lines=(
                f"The campaign {stop.slug} was paused by the automatic brake: {stop.reason}.",
                "The rows not sent yet stay pending; nothing more goes out until you act.",
                f"`newsletter status {stop.slug}` shows the counts. Look at the bounced addresses"
                " (`newsletter subscribers list --json`): a list imported from an old source is"
                " the usual cause. Then `newsletter send "
                f"{stop.slug} --yes` (or `newsletter schedule resume`) sends the rest; the brake"
                " then judges only what is sent after that.",
            ),
            summary=f"{stop.slug}: paused by the brake: {stop.reason}",
        ),
    )


def alert_missed_firing(config_path: str, scheduled_for: datetime, grace: timedelta) -> bool:
    """A firing was skipped because it came later than the catch-up grace."""
    try:
        newsletter = Newsletter(load_settings(Path(config_path)))
    except Exception as exc:  # the scheduler keeps going whatever happens here
        log.error("could not open the folder to alert the owner: %s", exc)
        return False
    try:
        at = _local(newsletter, scheduled_for)
        return notify(
            newsletter,
            Message(
                kind="firing_skipped",
                about=scheduled_for.astimezone(UTC).isoformat(),
                subject=f"Skipped: the send set for {at}",
                lines=(
                    f"The scheduled send at {at} was skipped: no scheduler ran it within the"
                    f" catch-up grace of {grace}, so nothing was sent.",
                    "The article waits for the next firing (`newsletter schedule list`);"
                    " `newsletter send --yes` sends it now.",
                ),
                summary=f"firing {at} skipped (beyond the catch-up grace of {grace})",
            ),
        )
    finally:
        newsletter.close()


def alert_lease_regained(config_path: str, identity: str, reason: str) -> bool:
    """The scheduler lost its lease (``reason``) and now leads again."""
    try:
        newsletter = Newsletter(load_settings(Path(config_path)))
    except Exception as exc:
        log.error("could not open the folder to alert the owner: %s", exc)
        return False
    try:
        return notify(
            newsletter,
            Message(
                kind="lease",
                about=identity,
                subject="The scheduler lost its lock and got it back",
                lines=(
                    f"The scheduler {identity} stopped firing ({reason}) and now leads again.",
                    "Firings due meanwhile follow the catch-up grace; `newsletter schedule"
                    " list` shows what comes next. Two schedulers on one database, or a"
                    " database that was unreachable, cause this.",
                ),
                summary=f"scheduler {identity}: lost the lease ({reason}), regained it",
            ),
        )
    finally:
        newsletter.close()


def watch(config_path: str, *, now: datetime | None = None) -> None:
    """The scheduler's job: heads-up, empty-queue and stalled-campaign checks."""
    from pipeline.owner.hold import send_heads_up

    settings = load_settings(Path(config_path))
    if not settings.owner.email:
        return
    clock: Callable[[], datetime] = (
        (lambda: now) if now is not None else (lambda: datetime.now(UTC))
    )
    newsletter = Newsletter(settings, clock=clock)
    try:
        if not SchedulerStateStore(newsletter.sessions).paused():
            check_queue(newsletter)
            send_heads_up(newsletter)
        check_stalled(newsletter)
        # Again here: a refused sender or key may also have kept the first alert from going.
        for stop in StopStore(newsletter.sessions).all().values():
            if stop.waiting_for is WaitingFor.OWNER:
                alert_needs_owner(newsletter, stop)
    except Exception as exc:  # logged; the next run tries again
        log.error("owner watch failed: %s", exc)
    finally:
        newsletter.close()
