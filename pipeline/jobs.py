"""Jobs the scheduler fires, referenced as ``module:function`` (never pickled code).

APScheduler stores ``pipeline.jobs:send_due`` and the settings path in its job
table, so a job survives restarts and upgrades without pickled functions.
Every job opens the folder afresh (settings edits apply at the next firing)
and decides from the database, so a pause or a one-off set by another process
is seen at firing time. ``now`` is for tests; the scheduler never passes it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from .campaigns import CampaignRunner
from .config import load_settings
from .errors import PipelineError
from .series import next_due, queue_order
from .service import Newsletter, SendReport
from .store.db import make_engine, make_sessionmaker
from .store.models import CampaignStatus
from .store.oneoffs import OneOffStore
from .store.scheduler_state import SchedulerStateStore

log = logging.getLogger("pipeline.scheduler")

# Runners of the campaigns this process is sending, so a SIGTERM can ask them
# to stop after the batch in hand (APScheduler calls jobs by reference, so
# there is no job object to hang them on), and a switch that turns away jobs
# still queued behind them once the process is stopping.
_runners: set[CampaignRunner] = set()
_runners_lock = threading.Lock()
_closing = threading.Event()


def begin_shutdown() -> int:
    """Stop taking firings, and ask running campaigns to stop after their batch in hand.

    What a campaign leaves pending is resumed when a scheduler starts again.
    Returns how many campaigns were asked to stop.
    """
    _closing.set()
    with _runners_lock:
        runners = list(_runners)
    for runner in runners:
        runner.request_stop()
    return len(runners)


def accept_firings() -> None:
    """Take firings again (a scheduler became the leader in this process)."""
    _closing.clear()


def _turned_away(what: str) -> bool:
    if _closing.is_set():
        log.warning("scheduler stopping: %s not run", what)
        return True
    return False


def _clock(now: datetime | None) -> Callable[[], datetime]:
    if now is None:
        return lambda: datetime.now(UTC)
    return lambda: now


def _open(config_path: str, now: datetime | None) -> Newsletter:
    return Newsletter(load_settings(Path(config_path)), clock=_clock(now))


def _send(newsletter: Newsletter, slug: str, why: str) -> SendReport | None:
    """Send (or resume) one campaign with start/end log lines; a PipelineError is logged."""
    log.info("campaign %s: starting (%s)", slug, why, extra={"slug": slug, "reason": why})
    registered: list[CampaignRunner] = []

    def register(runner: CampaignRunner) -> None:
        registered.append(runner)
        with _runners_lock:
            _runners.add(runner)

    try:
        report = newsletter.send(slug, on_runner=register)
    except PipelineError as exc:
        log.error("campaign %s: not sent: %s", slug, exc, extra={"slug": slug})
        return None
    finally:
        with _runners_lock:
            _runners.difference_update(registered)
    c = report.counts
    counts = {
        "planned": c.planned,
        "sent": c.sent,
        "failed": c.failed,
        "uncertain": c.uncertain,
        "suppressed": c.suppressed,
        "pending": c.pending + c.sending,
    }
    outcome = f"stopped: {report.stopped}" if report.stopped else "done"
    log.info(
        "campaign %s: %s: %d planned, %d sent, %d failed, %d uncertain, %d suppressed,"
        " %d not sent yet",
        slug,
        outcome,
        *counts.values(),
        extra={"slug": slug, **counts},
    )
    return report


def send_due(config_path: str, *, now: datetime | None = None) -> SendReport | None:
    """A recurring firing: send the next queued article that is due.

    Sends nothing (and says why) while paused or when no queued article is
    due. An article with a pending one-off send waits for its own time, as
    the planned dates show.
    """
    if _turned_away("recurring firing"):
        return None
    newsletter = _open(config_path, now)
    try:
        if SchedulerStateStore(newsletter.sessions).paused():
            log.warning("schedule paused: this firing sends nothing (newsletter schedule resume)")
            return None
        # An article with a pending one-off waits for its own time, and so do
        # the later parts of its series (parts never go out of order).
        held = {one.slug: one.at for one in OneOffStore(newsletter.sessions).pending()}
        sent = newsletter.ledger.sent_slugs()
        queue = [
            replace(
                article,
                send_after=max(held[article.slug], article.send_after or held[article.slug]),
            )
            if article.slug in held
            else article
            for article in queue_order(newsletter.articles().articles, sent)
        ]
        article = next_due(queue, newsletter.clock())
        if article is None:
            why = f"{len(queue)} queued, none due yet" if queue else "the queue is empty"
            log.warning(
                "schedule fired but no queued article is due: nothing sent (%s)",
                why,
                extra={"queued": len(queue)},
            )
            return None
        return _send(newsletter, article.slug, "recurring schedule")
    finally:
        newsletter.close()


def send_scheduled_due(config_path: str, *, now: datetime | None = None) -> list[str]:
    """Fire the one-off sends whose time has come; return the slugs sent.

    Runs every few seconds, so it looks first with a bare connection and opens
    the folder only when something is due. While paused, due one-offs stay
    pending; once resumed they go out if still within the catch-up grace.
    Beyond it they are marked missed and logged, like a missed firing.
    """
    if _closing.is_set():
        return []
    settings = load_settings(Path(config_path))
    moment = now or datetime.now(UTC)
    engine = make_engine(settings.database_url)
    try:
        sessions = make_sessionmaker(engine)
        if SchedulerStateStore(sessions).paused():
            return []
        due = OneOffStore(sessions).due(moment)
    finally:
        engine.dispose()
    if not due:
        return []
    grace = settings.schedule.catch_up_grace
    newsletter = Newsletter(settings, clock=_clock(now))
    store = OneOffStore(newsletter.sessions)
    sent: list[str] = []
    try:
        for one in due:
            late = timedelta(seconds=int((moment - one.at).total_seconds()))
            local = one.at.astimezone(settings.schedule.tz).isoformat()
            if late > grace:
                note = f"missed by {late}, beyond the catch-up grace of {grace}; not sent"
                if store.mark_missed(one.id, moment, note):
                    log.warning(
                        "one-off send of %s set for %s was %s; schedule it again to send it",
                        one.slug,
                        local,
                        note,
                        extra={"slug": one.slug},
                    )
                continue
            if _turned_away(f"one-off send of {one.slug}"):
                break  # it stays pending for the next start
            if not store.claim(one.id, moment):
                continue  # cancelled, or fired by another scheduler, since we looked
            log.info(
                "firing: one-off send of %s set for %s", one.slug, local, extra={"slug": one.slug}
            )
            if one.slug in newsletter.ledger.sent_slugs():
                campaign = newsletter.ledger.get_campaign(one.slug)
                if campaign is not None and campaign.status is CampaignStatus.DONE:
                    store.add_note(one.id, "already sent earlier; nothing sent twice")
                    log.warning(
                        "one-off send of %s: it was already sent; nothing sent twice",
                        one.slug,
                        extra={"slug": one.slug},
                    )
                    continue
            report = _send(newsletter, one.slug, f"one-off send set for {local}")
            if report is None:
                store.add_note(one.id, "not sent: see the scheduler log")
            else:
                sent.append(one.slug)
    finally:
        newsletter.close()
    return sent


def resume_interrupted(config_path: str, *, now: datetime | None = None) -> list[str]:
    """Finish campaigns a stop or crash left half-sent (oldest first); return their slugs.

    Runs when a scheduler becomes the leader and when the schedule is resumed.
    Resuming never resends a row (the ledger says what went). While paused it
    only logs: a pause may be the owner stopping a campaign on purpose.
    """
    if _turned_away("resuming interrupted campaigns"):
        return []
    newsletter = _open(config_path, now)
    try:
        unfinished = [
            campaign
            for campaign in reversed(newsletter.ledger.campaigns())
            # Only running ones: a campaign planned with `send --plan-only` is
            # left to the workers.
            if campaign.status is CampaignStatus.RUNNING
        ]
        if not unfinished:
            return []
        slugs = [campaign.slug for campaign in unfinished]
        if SchedulerStateStore(newsletter.sessions).paused():
            log.warning(
                "schedule paused: not resuming interrupted campaign(s) %s until"
                " newsletter schedule resume",
                ", ".join(slugs),
            )
            return []
        resumed: list[str] = []
        for slug in slugs:
            if _send(newsletter, slug, "resuming an interrupted campaign") is not None:
                resumed.append(slug)
        return resumed
    finally:
        newsletter.close()
