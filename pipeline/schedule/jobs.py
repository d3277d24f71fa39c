"""Jobs the scheduler fires, referenced as ``module:function`` (never pickled code).

APScheduler stores ``pipeline.schedule.jobs:send_due`` and the settings path in its job
table, so a job survives restarts and upgrades without pickled functions.
Every job opens the folder afresh (settings edits apply at the next firing)
and decides from the database, so a pause or a one-off set by another process
is seen at firing time. ``now`` is for tests; the scheduler never passes it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from pipeline.config import load_settings
from pipeline.content.queue import next_due, queue_order
from pipeline.errors import PipelineError
from pipeline.newsletter import Newsletter, SendReport
from pipeline.owner.hold import held_now, hold_note, one_off_held
from pipeline.schedule.catch_up import decide
from pipeline.sending.runner import CampaignRunner
from pipeline.store.db import make_engine, make_sessionmaker
from pipeline.store.models import CampaignStatus, WaitingFor
from pipeline.store.oneoffs import OneOffStore
from pipeline.store.scheduler_state import SchedulerStateStore
from pipeline.store.stops import StopStore

log = logging.getLogger("pipeline.scheduler")

# Runners of the campaigns this process is sending, so a SIGTERM can ask them
# to stop after the batch in hand (APScheduler calls jobs by reference, so
# there is no job object to hang them on), and a switch that turns away jobs
# still queued behind them once the process is stopping.
_runners: set[CampaignRunner] = set()
_runners_lock = threading.Lock()
_closing = threading.Event()
# Campaigns this process is sending now: a job never starts a second run of
# one (the scheduler's single worker thread already serializes its jobs; this
# also holds for anything else in the process that calls them).
_sending: set[str] = set()


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


def _held_by_preflight(newsletter: Newsletter, slug: str) -> bool:
    """Run preflight before a campaign starts; on a failure log each fix and hold the send.

    A campaign already started was checked when it started, so resuming it is
    never held. Links are not checked here: they never block a send.
    """
    from pipeline.preflight import run_preflight

    if newsletter.ledger.get_campaign(slug) is not None:
        return False
    try:
        report = run_preflight(newsletter, slug, links=False)
    except PipelineError as exc:
        log.error("campaign %s: not sent: %s", slug, exc, extra={"slug": slug})
        return True
    if report.ok:
        return False
    for check in report.failures:
        log.error("campaign %s: preflight: %s", slug, check.line(), extra={"slug": slug})
    log.error(
        "campaign %s: held: %d preflight failure(s); fix them (newsletter preflight %s),"
        " then `newsletter send %s --yes`",
        slug,
        len(report.failures),
        slug,
        slug,
        extra={"slug": slug, "preflight_failures": len(report.failures)},
    )
    return True


def _send(newsletter: Newsletter, slug: str, why: str) -> SendReport | None:
    """Send (or resume) one campaign with start/end log lines; a PipelineError is logged."""
    if _held_by_preflight(newsletter, slug):
        return None
    with _runners_lock:
        if slug in _sending:
            log.info("campaign %s: already being sent in this process; not started twice", slug)
            return None
        _sending.add(slug)
    log.info("campaign %s: starting (%s)", slug, why, extra={"slug": slug, "reason": why})
    registered: list[CampaignRunner] = []

    def register(runner: CampaignRunner) -> None:
        registered.append(runner)
        with _runners_lock:
            _runners.add(runner)

    try:
        report = newsletter.send(
            slug,
            on_runner=register,
            by_scheduler=True,
            on_plan=lambda plan: log.info(
                "campaign %s: %s", slug, plan.describe(), extra={"slug": slug}
            ),
        )
    except PipelineError as exc:
        log.error("campaign %s: not sent: %s", slug, exc, extra={"slug": slug})
        return None
    finally:
        with _runners_lock:
            _runners.difference_update(registered)
            _sending.discard(slug)
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
    _log_next_step(newsletter, report)
    return report


def _local(newsletter: Newsletter, moment: datetime | None) -> str:
    return moment.astimezone(newsletter.settings.schedule.tz).isoformat() if moment else "now"


def _log_next_step(newsletter: Newsletter, report: SendReport) -> None:
    """Say what happens to a campaign left with rows pending: a retry, or the owner."""
    stop, slug = report.stop, report.counts.slug
    if stop is None:
        return
    if stop.waiting_for is WaitingFor.OWNER:
        log.error(
            "campaign %s: waiting for the owner, not retried: %s (fix it, then"
            " `newsletter send %s --yes` or `newsletter schedule resume`)",
            slug,
            stop.reason,
            slug,
            extra={"slug": slug, "waiting_for": "owner"},
        )
    elif stop.retry_at is not None:
        at = _local(newsletter, stop.retry_at)
        log.warning(
            "campaign %s: retry %d at %s",
            slug,
            stop.retries,
            at,
            extra={"slug": slug, "waiting_for": "retry", "retry_at": at},
        )


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
        if (hold := held_now(newsletter)) is not None:
            log.warning(hold_note(newsletter, hold), extra={"slug": hold.slug})
            return None
        # An article with a pending one-off waits for its own time, and so do
        # the later parts of its series (parts never go out of order).
        held = {one.slug: one.at for one in OneOffStore(newsletter.sessions).pending()}
        sent = newsletter.ledger.sent_slugs()
        queue = queue_order(newsletter.articles().articles, sent)
        article = next_due(queue, newsletter.clock(), held)
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
    Beyond it they are marked missed and logged, like a missed firing (one
    policy for both: :mod:`pipeline.schedule.catch_up`).
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
    newsletter = Newsletter(settings, clock=_clock(now))
    store = OneOffStore(newsletter.sessions)
    sent: list[str] = []
    try:
        for one in due:
            catch_up = decide(one.at, moment, settings.schedule.catch_up_grace)
            local = one.at.astimezone(settings.schedule.tz).isoformat()
            if not catch_up.runs:
                note = f"{catch_up.reason}; not sent"
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
            if one_off_held(newsletter, one):
                continue  # it stays pending until `schedule resume` (then the grace decides)
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
    only logs: a pause may be the owner stopping a campaign on purpose. A
    campaign waiting for its owner is left alone, and so is one waiting for a
    retry: :func:`retry_stopped` tries it when due, so a restart neither
    forgets nor hurries the backoff. (A retry a stop interrupted has no time
    left: it resumes here.)
    """
    if _turned_away("resuming interrupted campaigns"):
        return []
    newsletter = _open(config_path, now)
    try:
        stops = StopStore(newsletter.sessions).all()
        waiting = {
            campaign_id
            for campaign_id, stop in stops.items()
            if stop.waiting_for is WaitingFor.OWNER or stop.retry_at is not None
        }
        for campaign_id in sorted(waiting):
            stop = stops[campaign_id]
            why = (
                "it waits for the owner"
                if stop.waiting_for is WaitingFor.OWNER
                else f"its retry is due at {_local(newsletter, stop.retry_at)}"
            )
            log.info("campaign %s: not resumed now: %s", stop.slug, why, extra={"slug": stop.slug})
        unfinished = [
            campaign
            for campaign in reversed(newsletter.ledger.campaigns())
            # Only running ones: a campaign planned with `send --plan-only` is
            # left to the workers.
            if campaign.status is CampaignStatus.RUNNING and campaign.id not in waiting
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


def retry_stopped(config_path: str, *, now: datetime | None = None) -> list[str]:
    """Try again the campaigns a run left with rows pending, once their backoff is over.

    Runs every few seconds beside the one-off poll, so it looks first with a
    bare connection. Each due retry is taken with a guarded UPDATE before it
    runs; the run then records the next stop (the wait doubles, up to 30
    minutes) or, once nothing is pending, clears it. Campaigns waiting for
    their owner are never tried. While paused nothing is tried.
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
        due = StopStore(sessions).due(moment)
    finally:
        engine.dispose()
    if not due:
        return []
    newsletter = Newsletter(settings, clock=_clock(now))
    stops = StopStore(newsletter.sessions)
    retried: list[str] = []
    try:
        for stop in due:
            if _turned_away(f"retry of {stop.slug}"):
                break  # it stays due for the next start
            if not stops.take(stop):
                continue  # retried by someone else, or sent by hand, since we looked
            why = f"retry {stop.retries} after: {stop.reason}"
            if _send(newsletter, stop.slug, why) is not None:
                retried.append(stop.slug)
            else:
                # It could not start (logged): back off as if it had stopped again.
                stops.record(stop.campaign_id, stop.reason, moment, needs_owner=False)
    finally:
        newsletter.close()
    return retried
