"""Sends the dashboard starts ("send now", "retry these", "resend"), each in a thread.

A send can take minutes; the page that asked for it must answer at once and
send the owner to the campaign page, where the counts move. The thread runs
:meth:`pipeline.newsletter.Newsletter.send` exactly as ``newsletter send``
does, so it is safe beside the scheduler, a worker or another server: the
ledger's claims decide who sends each row, never this module. What this
module adds is only bookkeeping for one process: one thread per campaign at
a time (a second click while it runs starts nothing), the last error to show
on the campaign page, and a graceful stop when the server shuts down (the
batch in hand finishes; the rest stays pending for the next run).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from pipeline.errors import PipelineError
from pipeline.newsletter import Newsletter, SendReport
from pipeline.sending.runner import CampaignRunner

_log = logging.getLogger(__name__)

#: Seconds a server shutdown waits for each send to finish its batch in hand.
STOP_WAIT = 30.0


@dataclass(frozen=True)
class SendRequest:
    """What the owner asked for: the campaign, and which rows to put back in the queue."""

    slug: str
    retry_failed: bool = False
    resend_uncertain: bool = False


class BackgroundSends:
    """The sends one web server runs in threads."""

    def __init__(self, newsletter: Newsletter) -> None:
        self._newsletter = newsletter
        self._lock = threading.Lock()
        self._threads: dict[str, threading.Thread] = {}
        self._runners: dict[str, CampaignRunner] = {}
        self._errors: dict[str, str] = {}
        self._closing = False

    def start(self, request: SendRequest) -> bool:
        """Start the send in a thread; False when one for this campaign runs here already."""
        with self._lock:
            if self._closing or self.running(request.slug):
                return False
            self._errors.pop(request.slug, None)
            thread = threading.Thread(
                target=self._run, args=(request,), name=f"send-{request.slug}", daemon=True
            )
            self._threads[request.slug] = thread
            thread.start()
            return True

    def running(self, slug: str) -> bool:
        """Whether this server is sending ``slug`` now."""
        thread = self._threads.get(slug)
        return thread is not None and thread.is_alive()

    def error(self, slug: str) -> str | None:
        """Why the last send of ``slug`` started here did not run, if it did not."""
        return self._errors.get(slug)

    def join(self, slug: str, timeout: float) -> bool:
        """Wait at most ``timeout`` seconds for ``slug``'s send; whether it has finished."""
        thread = self._threads.get(slug)
        if thread is not None:
            thread.join(timeout)
        return not self.running(slug)

    def stop(self, timeout: float = STOP_WAIT) -> None:
        """Ask every send to stop after its batch in hand, and wait for them (bounded)."""
        with self._lock:
            self._closing = True
            runners = list(self._runners.values())
            threads = list(self._threads.values())
        for runner in runners:
            runner.request_stop()
        for thread in threads:
            thread.join(timeout)

    def _run(self, request: SendRequest) -> None:
        register: Callable[[CampaignRunner], None] = partial(self._keep, request.slug)
        try:
            report: SendReport = self._newsletter.send(
                request.slug,
                retry_failed=request.retry_failed,
                resend_uncertain=request.resend_uncertain,
                on_runner=register,
            )
        except PipelineError as exc:
            self._errors[request.slug] = str(exc)
            _log.error("campaign %s: not sent from the dashboard: %s", request.slug, exc)
            return
        except Exception:  # a thread's crash would vanish: log it, and tell the page
            self._errors[request.slug] = "the send stopped on an unexpected error (see the log)"
            _log.exception("campaign %s: the dashboard's send failed", request.slug)
            return
        finally:
            with self._lock:
                self._runners.pop(request.slug, None)
        if report.stopped:
            self._errors[request.slug] = report.stopped

    def _keep(self, slug: str, runner: CampaignRunner) -> None:
        with self._lock:
            self._runners[slug] = runner
            closing = self._closing
        if closing:  # the server began shutting down while this send was starting
            runner.request_stop()
