"""The shared layer of every HTTP API transport: batches, answers, retries, doubt.

A provider with a send API over HTTP (SendGrid today; Mailgun or Postmark
tomorrow) subclasses :class:`HttpTransport` and says only what is its own: how
one recipient's part of a request and a whole request body are built, how a
request is posted, and what its answers mean (:attr:`HttpTransport.status_verdicts`,
a plain dict of HTTP status -> :class:`Verdict`, and small hooks for its error
texts). The fixed steps live here, once, because they decide the ledger:

* An address unsafe in a header fails; a repeated address (compared
  case-insensitively) fails as a duplicate rather than being mailed twice.
* Requests of up to ``max_per_request`` recipients. After a request that may
  have left (uncertain) or could not get through (deferred), the rest of the
  batch waits for a later run instead of adding to the doubt.
* ACCEPTED: ``SENT``. REFUSED: the request's recipients ``FAILED`` (when the
  provider's errors name single recipients, only those fail and the rest are
  sent again: a refused request accepts nothing). STOP:
  :class:`TransportStopError` while nothing was accepted. RATE_LIMITED: wait
  (the provider's reset time, capped) and send the same request again,
  bounded. RETRY: bounded backoff with jitter, then ``DEFERRED``.
  MAYBE_ACCEPTED: ``UNCERTAIN``, never sent again.
* A post raising :class:`urllib.error.URLError` never arrived whole (retried
  like RETRY); any other :class:`OSError` or :class:`http.client.HTTPException`:
  written, answer lost, maybe accepted: ``UNCERTAIN``.
* Every wait ends at once on :meth:`~.base.Transport.request_stop`; the
  recipients not handed over then come back ``DEFERRED`` ("stopped").
"""

from __future__ import annotations

import http
import http.client
import logging
import random
import time
import urllib.error
from abc import abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar, Final

from pydantic import SecretStr

from pipeline.render.message import unsafe_address
from pipeline.sending.plan import TransportKind
from pipeline.sending.transports.base import (
    CampaignMessage,
    DeliveryResult,
    FailureKind,
    Outcome,
    Recipient,
    Sleep,
    Transport,
    TransportStopError,
)
from pipeline.sending.transports.http_answers import (
    HttpAnswer,
    ProviderError,
    Verdict,
    header,
    verdict_for,
)

#: 429s are not failures, but a provider that never lets up must not hold a batch forever.
MAX_RATE_LIMIT_RETRIES: Final = 50
#: Exponential backoff: first delay and ceiling, in seconds (before jitter).
BACKOFF_BASE: Final = 1.0
BACKOFF_CAP: Final = 60.0
#: How much of a provider's error text is kept in a ledger row.
MAX_ERROR_LENGTH: Final = 500

DUPLICATE_ERROR: Final = "duplicate address in batch"

__all__ = [
    "BACKOFF_BASE",
    "DUPLICATE_ERROR",
    "MAX_RATE_LIMIT_RETRIES",
    "HttpAnswer",
    "HttpTransport",
    "ProviderError",
    "Verdict",
    "header",
    "verdict_for",
]


class HttpTransport(Transport):
    """A batch transport over an HTTP API; subclasses fill in the provider's parts."""

    kind: ClassVar[TransportKind] = "api"
    #: The provider's name as every error and log line says it ("SendGrid").
    label: ClassVar[str]
    #: The provider's HTTP status -> verdict; unlisted codes go by class (:func:`verdict_for`).
    status_verdicts: ClassVar[Mapping[int, Verdict]] = {}
    #: Recipients per request (the provider's documented limit).
    max_per_request: ClassVar[int] = 1000
    max_rate_limit_retries: ClassVar[int] = MAX_RATE_LIMIT_RETRIES

    def __init__(
        self,
        *,
        secret: SecretStr | None,
        timeout: float,
        max_retries: int,
        max_rate_limit_wait: float,
        clock: Callable[[], datetime],
        sleep: Sleep | None = None,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        """``sleep`` is for tests: without it, waits end as soon as a stop is requested."""
        self._secret = secret
        self._timeout = timeout
        self._max_retries = max_retries
        self._max_rate_limit_wait = max_rate_limit_wait
        self._clock = clock
        self._sleep = sleep
        self._jitter = jitter
        self.waited = 0.0  # Transport.waited: this lane's seconds in posts
        # The provider module's logger, so its log lines keep their name.
        self._log = logging.getLogger(type(self).__module__)

    @property
    def backoff_base(self) -> float:
        """First retry delay in seconds (before jitter)."""
        return BACKOFF_BASE

    # -- what a provider says --------------------------------------------------------

    @abstractmethod
    def recipient_parts(self, message: CampaignMessage, people: Sequence[Recipient]) -> list[Any]:
        """Each recipient's part of a request (built once, reused if a request is resent)."""

    @abstractmethod
    def request_body(self, message: CampaignMessage, parts: list[Any]) -> str | bytes:
        """A whole request body carrying these recipients' parts."""

    @abstractmethod
    def post(self, body: str | bytes) -> HttpAnswer:
        """Post one request; raise URLError if it never arrived, OSError if the answer was lost."""

    def answer_errors(self, answer: HttpAnswer) -> list[ProviderError]:
        """The errors an answer lists (none by default)."""
        return []

    def blamed(self, errors: Sequence[ProviderError], count: int) -> dict[int, list[str]] | None:
        """Which of ``count`` recipients the errors name, or None if they blame the request."""
        return None

    def message_id(self, answer: HttpAnswer) -> str | None:
        """The provider's id for an accepted request, if it gives one."""
        return None

    def rate_limit_wait(self, answer: HttpAnswer) -> float | None:
        """Seconds until a 429 lifts, as the answer says (``Retry-After``); None: back off."""
        value = header(answer.headers, "Retry-After")
        try:
            return float(value) if value else None
        except ValueError:
            return None

    def stop_message(self, status: int, detail: str) -> str:
        """Why every request is refused (``detail`` is the provider's errors, or empty)."""
        detail = f": {detail}" if detail else ""
        return f"{self.label} refused every request ({status}){detail}"

    # -- the fixed steps ---------------------------------------------------------------

    def send_batch(
        self, message: CampaignMessage, recipients: Sequence[Recipient]
    ) -> list[DeliveryResult]:
        """Send in requests of up to ``max_per_request``; one result per recipient, in order."""
        self.open()
        results, unique = _screen(recipients)
        accepted_any = False
        halted: str | None = None
        for chunk in _chunks(unique, self.max_per_request):
            people = [recipient for _, recipient in chunk]
            if halted is None and self.stop_requested:
                halted = "stopped"  # not handed over: back to pending
            if halted is not None:
                # After a request that may have left or could not get through,
                # the rest wait for a later run instead of adding to the doubt.
                outcome = [DeliveryResult(r, Outcome.DEFERRED, error=halted) for r in people]
            else:
                try:
                    outcome = self._send_request(message, people)
                except TransportStopError as exc:
                    if not accepted_any:
                        raise
                    # Part of this call already went out: those results must be kept.
                    halted = str(exc)
                    outcome = [DeliveryResult(r, Outcome.DEFERRED, error=halted) for r in people]
                accepted_any = accepted_any or any(
                    r.outcome in (Outcome.SENT, Outcome.UNCERTAIN) for r in outcome
                )
                halting = [r for r in outcome if r.outcome in (Outcome.UNCERTAIN, Outcome.DEFERRED)]
                if halting and halted is None:
                    halted = f"not attempted after an earlier request: {halting[0].error}"
            for (index, _), result in zip(chunk, outcome, strict=True):
                results[index] = result
        return [r for r in results if r is not None]

    def _send_request(
        self, message: CampaignMessage, people: list[Recipient]
    ) -> list[DeliveryResult]:
        """One request's recipients, retried as their answers allow."""
        results: dict[int, DeliveryResult] = {}
        pending = list(range(len(people)))
        parts = self.recipient_parts(message, people)
        while pending:
            body = self.request_body(message, [parts[i] for i in pending])
            answer = self._post_with_retries(body, people, pending)
            if isinstance(answer, list):
                results.update(zip(pending, answer, strict=True))
                break
            errors = self.answer_errors(answer)
            blamed = self.blamed(errors, len(pending))
            if blamed is None or len(blamed) == len(pending):
                detail = "; ".join(str(e) for e in errors) or f"HTTP {answer.status}"
                error = self._clean(f"{self.label} refused the request ({answer.status}): {detail}")
                # The request, not the people, was refused: a fixed issue may be retried.
                batch = FailureKind.BATCH
                results.update(
                    (i, DeliveryResult(people[i], Outcome.FAILED, error=error, failure_kind=batch))
                    for i in pending
                )
                break
            # The errors name single recipients and a refused request accepts
            # nothing: fail those, send the others again.
            for position, messages in blamed.items():
                index = pending[position]
                error = self._clean(f"{self.label} refused this address: " + "; ".join(messages))
                results[index] = DeliveryResult(
                    people[index], Outcome.FAILED, error=error, failure_kind=FailureKind.RECIPIENT
                )
            pending = [i for n, i in enumerate(pending) if n not in blamed]
        return [results[i] for i in range(len(people))]

    def _post_with_retries(
        self, body: str | bytes, people: list[Recipient], pending: list[int]
    ) -> list[DeliveryResult] | HttpAnswer:
        """Final results for ``pending``, or the refusal (REFUSED) for the caller to read."""
        failures = 0
        throttled = 0
        label = self.label

        def everyone(
            outcome: Outcome, error: str | None = None, mid: str | None = None
        ) -> list[DeliveryResult]:
            return [
                DeliveryResult(people[i], outcome, message_id=mid, error=error) for i in pending
            ]

        while True:
            try:
                answer = self._timed_post(body)
            except urllib.error.URLError as exc:
                # urllib raises URLError only while connecting or writing: the
                # request never arrived whole, so nothing was accepted.
                failures += 1
                reason = f"cannot reach {label}: {_reason(exc)}"
                if failures > self._max_retries:
                    return everyone(Outcome.DEFERRED, self._clean(f"{reason} ({failures} tries)"))
                if self._wait(self._backoff(failures, BACKOFF_CAP), reason):
                    return everyone(Outcome.DEFERRED, "stopped")
                continue
            except (OSError, http.client.HTTPException) as exc:
                # The request was written, the answer never came: it may have been
                # accepted. Sending it again could mail everyone twice.
                error = _uncertain_reason(label, exc, self._timeout)
                return everyone(Outcome.UNCERTAIN, self._clean(error))
            verdict = verdict_for(answer.status, self.status_verdicts)
            if verdict is Verdict.ACCEPTED:
                return everyone(Outcome.SENT, mid=self.message_id(answer))
            if verdict is Verdict.REFUSED:
                return answer
            if verdict is Verdict.MAYBE_ACCEPTED:
                error = _gateway_reason(label, answer.status)
                return everyone(Outcome.UNCERTAIN, self._clean(error))
            detail = "; ".join(str(e) for e in self.answer_errors(answer))
            if verdict is Verdict.STOP:
                raise TransportStopError(self._clean(self.stop_message(answer.status, detail)))
            if verdict is Verdict.RATE_LIMITED:
                throttled += 1
                if throttled > self.max_rate_limit_retries:
                    error = f"{label} rate limit (429) did not lift after {throttled} tries"
                    return everyone(Outcome.DEFERRED, error)
                if self._wait(self._rate_limit_wait(answer, throttled), "rate limited (429)"):
                    return everyone(Outcome.DEFERRED, "stopped")
                continue
            failures += 1
            if failures > self._max_retries:
                error = f"{label} unavailable ({answer.status}): {detail or 'no details'}"
                return everyone(Outcome.DEFERRED, self._clean(f"{error} ({failures} tries)"))
            if self._wait(self._backoff(failures, BACKOFF_CAP), f"answered {answer.status}"):
                return everyone(Outcome.DEFERRED, "stopped")

    def _timed_post(self, body: str | bytes) -> HttpAnswer:
        """:meth:`post`, its time added to :attr:`waited` (what auto lanes follow)."""
        start = time.perf_counter()
        try:
            return self.post(body)
        finally:
            self.waited += time.perf_counter() - start

    # -- waiting ---------------------------------------------------------------------

    def _wait(self, seconds: float, why: str) -> bool:
        """Wait before trying again; True when a stop cut the wait short."""
        self._log.info("%s %s; trying again in %.1f s", self.label, self._clean(why), seconds)
        if self.pause(seconds):
            self._log.info("%s: stopping on request; the request was not sent again", self.label)
            return True
        return False

    def _backoff(self, attempt: int, cap: float) -> float:
        """Exponential, capped, with jitter so parallel workers do not retry in step."""
        delay = min(cap, self.backoff_base * 2.0 ** (attempt - 1))
        return delay / 2 + self._jitter() * delay / 2

    def _rate_limit_wait(self, answer: HttpAnswer, attempt: int) -> float:
        """The provider's reset time, capped; else backoff."""
        cap = self._max_rate_limit_wait
        wait = self.rate_limit_wait(answer) or 0.0
        if wait > 0:
            # up to a second more, so workers sharing the limit do not all return at once
            return min(cap, wait + self._jitter())
        return self._backoff(attempt, cap)

    # -- messages ----------------------------------------------------------------------

    def _clean(self, text: str) -> str:
        """Cut to a ledger-sized line, with the key masked should a provider echo it."""
        key = self._secret.get_secret_value() if self._secret is not None else ""
        if key:
            text = text.replace(key, "[redacted]")
        text = " ".join(text.split())
        if len(text) > MAX_ERROR_LENGTH:
            text = text[: MAX_ERROR_LENGTH - 1] + "…"
        return text


def _screen(
    recipients: Sequence[Recipient],
) -> tuple[list[DeliveryResult | None], list[tuple[int, Recipient]]]:
    """Fail unsafe and repeated addresses; the rest, with their positions, are to send."""
    results: list[DeliveryResult | None] = [None] * len(recipients)
    unique: list[tuple[int, Recipient]] = []
    seen: set[str] = set()
    for index, recipient in enumerate(recipients):
        address = recipient.email.strip().lower()
        if (unsafe := unsafe_address(address)) is not None:
            # The provider writes the headers: an address it could decode again never goes.
            results[index] = DeliveryResult(recipient, Outcome.FAILED, error=unsafe)
        elif address in seen:
            results[index] = DeliveryResult(
                recipient,
                Outcome.FAILED,
                error=DUPLICATE_ERROR,
                failure_kind=FailureKind.DUPLICATE,
            )
        else:
            seen.add(address)
            unique.append((index, recipient))
    return results, unique


def _chunks(
    items: Sequence[tuple[int, Recipient]], size: int
) -> Iterator[Sequence[tuple[int, Recipient]]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _reason(exc: urllib.error.URLError) -> str:
    reason = exc.reason
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason) or type(reason).__name__


def _gateway_reason(label: str, status: int) -> str:
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = "gateway error"
    return (
        f"{label}'s gateway answered {status} {phrase}; the request may have been "
        "accepted, so it is not sent again"
    )


def _uncertain_reason(label: str, exc: BaseException, timeout: float) -> str:
    if isinstance(exc, TimeoutError):
        what = f"no answer from {label} within {timeout:g} s"
    else:
        what = f"{label}'s answer was lost ({type(exc).__name__})"
    return f"{what}; the request may have been accepted, so it is not sent again"
