"""The scheduler's welcome pass: send the welcome email to whoever became active since.

A confirmed web sign-up only enrols the person (the request never sends); this
pass, on the one-off poll's cadence, sends them their welcome within seconds.
It goes through the same ``_send`` as every campaign (logging, the SIGTERM
stop, one run per campaign per process). While paused nothing goes, and a
welcome run that stopped with rows pending is left to ``retry_stopped`` and its
backoff, not hurried here.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from pipeline.config import load_settings
from pipeline.content.reserved import WELCOME_SLUG
from pipeline.errors import PipelineError
from pipeline.newsletter import Newsletter, SendReport
from pipeline.render.welcome import has_welcome
from pipeline.schedule.jobs import _clock, _closing, _send, log
from pipeline.sending.welcome import prepare_welcome
from pipeline.store import welcome as stored
from pipeline.store.db import make_engine, make_sessionmaker
from pipeline.store.scheduler_state import SchedulerStateStore
from pipeline.store.stops import StopStore

WELCOME_JOB = "welcome-emails"


def send_welcomes_due(config_path: str, *, now: datetime | None = None) -> SendReport | None:
    """Send pending welcome emails; the run's report, or None when nothing was sent.

    Looks first with a bare connection (it runs every few seconds), and only
    opens the folder when someone is waiting.
    """
    if _closing.is_set():
        return None
    settings = load_settings(Path(config_path))
    if not has_welcome(settings.templates_path):
        return None
    engine = make_engine(settings.database_url)
    try:
        sessions = make_sessionmaker(engine)
        welcome_id = stored.campaign_id(sessions)
        if welcome_id is None or not stored.has_pending(sessions, welcome_id):
            return None
        if SchedulerStateStore(sessions).paused():
            return None
        if welcome_id in StopStore(sessions).all():
            return None  # waiting for a retry or for the owner: retry_stopped's to decide
    finally:
        engine.dispose()
    newsletter = Newsletter(settings, clock=_clock(now))
    try:
        try:
            prepare_welcome(newsletter)  # today's series and template in the stored email
        except PipelineError as exc:
            log.error("welcome email: not sent: %s", exc, extra={"slug": WELCOME_SLUG})
            return None
        return _send(newsletter, WELCOME_SLUG, "new subscribers to welcome")
    finally:
        newsletter.close()
