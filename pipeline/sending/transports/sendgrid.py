"""SendGrid's v3 Mail Send API: one request carries up to 1000 recipients.

Modelled on django-anymail's ``backends/sendgrid.py``: a small provider module
behind the base class. The request body is a plain dict (the SDK's ``Mail``
helpers are several times slower and prepend personalizations); the official
client only does the HTTP. The part of the body every recipient shares is built
once per campaign; each request adds one personalization per recipient.

How an answer is read decides the ledger, so it is strict about what is known:

* 2xx: every recipient of the request is ``SENT``.
* 400/413: SendGrid refused this request; its recipients are ``FAILED`` with
  SendGrid's own messages (when the errors name single personalizations, only
  those recipients fail and the rest are sent again: a 400 accepts nothing).
* 401/403 (and any other 4xx): the key or endpoint is refused for everything,
  so :class:`TransportStopError` stops the campaign while nothing is accepted.
* 429: wait for ``X-RateLimit-Reset`` (or back off) and send the same request
  again; 500, 503 (and other 5xx) or a connection that never carried the
  request: bounded retries, then ``DEFERRED``.
* 502 and 504: a gateway's answer, which can come after SendGrid took the
  request; like a lost answer, ``UNCERTAIN`` and never resent.
* No answer after the request was written (timeout, connection dropped): it may
  have been accepted, so the recipients are ``UNCERTAIN`` and never resent.

Every wait (429, backoff) ends at once on :meth:`~.base.Transport.request_stop`;
the recipients not handed over then come back ``DEFERRED``.
"""

from __future__ import annotations

import html
import http.client
import json
import logging
import random
import re
import urllib.error
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Any, Final

import orjson
import sendgrid
from pydantic import SecretStr
from python_http_client.exceptions import HTTPError as ProviderHTTPError

from pipeline.config import SendGridSettings
from pipeline.errors import ConfigError
from pipeline.render import PLACEHOLDERS, placeholder
from pipeline.render.message import header_safe, unsafe_address
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

if TYPE_CHECKING:
    from pipeline.sending.transports import TransportEnv

#: SendGrid's documented limit of personalizations (and recipients) per request.
MAX_PER_REQUEST: Final = 1000
#: SendGrid allows at most this many categories on a message.
MAX_CATEGORIES: Final = 10
#: 429s are not failures, but a provider that never lets up must not hold a batch forever.
MAX_RATE_LIMIT_RETRIES: Final = 50
#: Exponential backoff: first delay and ceiling, in seconds (before jitter).
BACKOFF_BASE: Final = 1.0
BACKOFF_CAP: Final = 60.0
#: How much of a provider's error text is kept in a ledger row.
MAX_ERROR_LENGTH: Final = 500

DUPLICATE_ERROR: Final = "duplicate address in batch"
#: What request bodies are sent as: JSON in UTF-8, said so (see :func:`request_json`).
JSON_CONTENT_TYPE: Final = "application/json; charset=utf-8"

_log = logging.getLogger(__name__)


class _Verdict(Enum):
    """What one HTTP answer means for the recipients of the request."""

    ACCEPTED = "accepted"
    REFUSED = "refused"  # this request is bad: its recipients fail
    STOP = "stop"  # the key or endpoint is refused: every request would be
    RATE_LIMITED = "rate limited"
    RETRY = "retry"  # not accepted, worth trying again shortly
    MAYBE_ACCEPTED = "maybe accepted"  # a gateway gave up: never sent again


#: SendGrid's HTTP status -> verdict; unlisted codes go by class (see :func:`_verdict`).
_STATUS_VERDICTS: Final[dict[int, _Verdict]] = {
    200: _Verdict.ACCEPTED,  # what sandbox mode answers
    202: _Verdict.ACCEPTED,
    400: _Verdict.REFUSED,
    413: _Verdict.REFUSED,
    401: _Verdict.STOP,
    403: _Verdict.STOP,
    408: _Verdict.RETRY,  # the server gave up reading the request: nothing accepted
    429: _Verdict.RATE_LIMITED,
    # A 5xx is read by what it says about the request. 502 Bad Gateway and
    # 504 Gateway Timeout come from a proxy in front of the API: it had
    # forwarded the whole request and then got a bad answer or none in time,
    # while the service behind it may well have queued the mail. Sent again,
    # the whole batch could arrive twice, so they count as a lost answer.
    502: _Verdict.MAYBE_ACCEPTED,
    504: _Verdict.MAYBE_ACCEPTED,
    # 500 is what SendGrid documents as "an error on our side" and 503 as
    # "service unavailable": the API itself answered that it did not take the
    # request, so retrying with backoff cannot send anything twice. Other 5xx
    # codes (501, 505, ...) are refusals of the same kind (see _verdict).
    500: _Verdict.RETRY,
    503: _Verdict.RETRY,
}


def _verdict(status: int) -> _Verdict:
    if status in _STATUS_VERDICTS:
        return _STATUS_VERDICTS[status]
    if 200 <= status < 300:
        return _Verdict.ACCEPTED
    if status >= 500:
        return _Verdict.RETRY
    # 404, 405, 415...: a wrong SENDGRID_API_HOST fails every request alike.
    return _Verdict.STOP


class _HideRequestDetails(logging.Filter):
    """Drop python-http-client's DEBUG lines that print request headers and body.

    They carry the API key (the Authorization header) and every subscriber's
    address, and a debug log must never hold either.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.msg if isinstance(record.msg, str) else ""
        return not message.startswith(("HEADERS:", "PAYLOAD:"))


_client_logger = logging.getLogger("python_http_client.client")
if not any(isinstance(f, _HideRequestDetails) for f in _client_logger.filters):
    _client_logger.addFilter(_HideRequestDetails())


# -- the request body -------------------------------------------------------------------


def _html_key(name: str) -> str:
    # SendGrid puts one raw value into every part, so the HTML part gets its own
    # keys whose values are escaped: "<b>" must not become markup.
    return f"{name}_html"


@dataclass(frozen=True)
class _Substitution:
    """One substitution every personalization carries: key, value name, escaped or not."""

    key: str
    name: str
    html_escaped: bool


@dataclass(frozen=True)
class _CampaignBody:
    """The part of every request of one campaign that is the same for all recipients."""

    message: CampaignMessage  # held, so the identity check below can never see a reused id
    shared: dict[str, Any]
    substitutions: tuple[_Substitution, ...]

    def is_for(self, message: CampaignMessage) -> bool:
        """Whether this body was built for ``message`` (same issue object, same campaign)."""
        cached = self.message
        return cached is message or (
            cached.issue is message.issue
            and cached.campaign == message.campaign
            and cached.sender == message.sender
        )


def build_campaign_body(message: CampaignMessage, options: SendGridSettings) -> _CampaignBody:
    """Everything but the personalizations; HTML placeholders get ``_html`` keys."""
    issue, sender = message.issue, message.sender
    text_names = [n for n in PLACEHOLDERS if placeholder(n) in issue.text]
    html_names = [n for n in PLACEHOLDERS if placeholder(n) in issue.html]
    page = issue.html
    for name in html_names:
        page = page.replace(placeholder(name), placeholder(_html_key(name)))
    # text/plain first: SendGrid requires it, and clients show the last part they can.
    content = [
        {"type": kind, "value": value}
        for kind, value in (("text/plain", issue.text), ("text/html", page))
        if value
    ]
    sender_address: dict[str, str] = {"email": sender.email}
    if sender.name:
        sender_address["name"] = header_safe(sender.name)
    shared: dict[str, Any] = {
        "from": sender_address,
        "subject": header_safe(issue.subject),
        "content": content,
        "custom_args": {"campaign": message.campaign},
    }
    if sender.reply_to:
        shared["reply_to"] = {"email": sender.reply_to}
    if options.categories:
        shared["categories"] = list(dict.fromkeys(options.categories))
    if options.sandbox_mode:
        shared["mail_settings"] = {"sandbox_mode": {"enable": True}}
    substitutions = tuple(
        [_Substitution(placeholder(n), n, html_escaped=False) for n in text_names]
        + [_Substitution(placeholder(_html_key(n)), n, html_escaped=True) for n in html_names]
    )
    return _CampaignBody(message, shared, substitutions)


#: The headers of every personalization; RFC 8058 one-click. SendGrid reserves neither name.
_ONE_CLICK: Final = "List-Unsubscribe=One-Click"


def build_personalization(campaign: _CampaignBody, recipient: Recipient) -> dict[str, Any]:
    """One recipient's envelope: address, substitutions, custom_args, unsubscribe headers.

    Called once per recipient, so the substitution keys are worked out once per
    campaign (:func:`build_campaign_body`) and only the values are made here.
    """
    values = recipient.values()
    substitutions = {
        s.key: html.escape(values[s.name], quote=True) if s.html_escaped else values[s.name]
        for s in campaign.substitutions
    }
    custom_args = {"campaign": campaign.message.campaign}
    if recipient.delivery_id is not None:
        custom_args["delivery_id"] = str(recipient.delivery_id)
    if recipient.subscriber_id is not None:
        custom_args["subscriber_id"] = str(recipient.subscriber_id)
    return {
        "to": [{"email": recipient.email}],
        "substitutions": substitutions,
        "custom_args": custom_args,
        # RFC 2369 + RFC 8058 one-click.
        "headers": {
            "List-Unsubscribe": f"<{header_safe(recipient.unsubscribe_url)}>",
            "List-Unsubscribe-Post": _ONE_CLICK,
        },
    }


class _Payload(bytes):
    """Request bytes that print as their size.

    python-http-client formats every body into a DEBUG message before the log
    level is looked at: for a 1000-recipient request, a 600 KB ``repr`` built
    and dropped (about 1.4 ms, a tenth of the request), and with DEBUG on,
    every address in the log. Printed, this is one short line instead.
    """

    def __str__(self) -> str:
        return f"<{len(self):,} bytes of JSON, not logged>"

    def __repr__(self) -> str:
        return str(self)

    def __format__(self, spec: str) -> str:
        return str(self)


class _RequestBody(str):
    """JSON text whose encoded form is a :class:`_Payload` (the client encodes it)."""

    def encode(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        return _Payload(super().encode(encoding, errors))


def request_json(campaign: _CampaignBody, personalizations: list[dict[str, Any]]) -> str:
    """A whole request body as JSON text: the shared part and these personalizations.

    orjson writes a thousand personalizations in a fraction of the time the
    standard library takes (its output is UTF-8, hence the charset in
    :data:`JSON_CONTENT_TYPE`). It refuses what is not valid Unicode (a lone
    surrogate cannot come from our database, but if it ever did), and then
    the standard library, which escapes everything to ASCII, writes the body.
    """
    body = {**campaign.shared, "personalizations": personalizations}
    try:
        text = orjson.dumps(body).decode()
    except orjson.JSONEncodeError:
        text = json.dumps(body)
    return _RequestBody(text)


# -- reading answers -------------------------------------------------------------------

_PERSONALIZATION_FIELD: Final = re.compile(r"^personalizations(?:\.|\[)(\d+)")


@dataclass(frozen=True)
class _ProviderError:
    message: str
    field: str | None

    def __str__(self) -> str:
        return f"{self.message} ({self.field})" if self.field else self.message


def _provider_errors(body: bytes | None) -> list[_ProviderError]:
    """SendGrid's ``errors[]`` from a JSON answer; empty when it is not one."""
    try:
        data = json.loads(body or b"")
    except ValueError:
        return []
    errors = data.get("errors") if isinstance(data, dict) else None
    found = []
    for item in errors if isinstance(errors, list) else []:
        if isinstance(item, dict) and item.get("message"):
            field = item.get("field")
            # the published examples write a missing field as the string "null"
            usable = isinstance(field, str) and field not in ("", "null")
            found.append(_ProviderError(str(item["message"]), field if usable else None))
    return found


def _blamed(errors: Sequence[_ProviderError], count: int) -> dict[int, list[str]] | None:
    """Which personalizations the errors point at, or None if any is about the whole request."""
    if not errors:
        return None
    blamed: dict[int, list[str]] = {}
    for error in errors:
        match = _PERSONALIZATION_FIELD.match(error.field or "")
        if match is None or int(match.group(1)) >= count:
            return None
        blamed.setdefault(int(match.group(1)), []).append(str(error))
    return blamed


@dataclass(frozen=True)
class _Answer:
    """One HTTP answer, whether the client raised it or returned it."""

    status: int
    headers: Mapping[str, str]
    body: bytes | None


def _header(headers: Any, name: str) -> str | None:
    value = headers.get(name) if headers is not None else None
    return str(value) if value is not None else None


# -- the transport ---------------------------------------------------------------------


class SendGridTransport(Transport):
    """Sends a campaign batch through SendGrid, up to 1000 recipients a request.

    Within one ``send_batch`` call an address goes out once: a second recipient
    with the same address (compared case-insensitively) is ``FAILED`` with
    "duplicate address in batch" rather than mailed twice.
    """

    name = "sendgrid"

    def __init__(
        self,
        *,
        api_key: SecretStr,
        host: str,
        options: SendGridSettings,
        clock: Callable[[], datetime],
        sleep: Sleep | None = None,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        """``sleep`` is for tests: without it, waits end as soon as a stop is requested."""
        self._api_key = api_key
        self._host = host.rstrip("/")
        self._options = options
        self._clock = clock
        self._sleep = sleep
        self._jitter = jitter
        self._client: Any = None
        self._campaign: _CampaignBody | None = None

    @classmethod
    def from_env(cls, env: TransportEnv) -> SendGridTransport:
        """Build from settings; :class:`ConfigError` when the key or host cannot work."""
        settings = env.settings
        key = settings.sendgrid_api_key
        if key is None or not key.get_secret_value().strip():
            raise ConfigError("SENDGRID_API_KEY is not set")
        host = settings.sendgrid_api_host
        if not host.startswith(("https://", "http://")):
            raise ConfigError("SENDGRID_API_HOST must start with https:// (or http://)")
        categories = list(dict.fromkeys(settings.sendgrid.categories))
        if len(categories) > MAX_CATEGORIES or any(len(c) > 255 for c in categories):
            raise ConfigError(
                f"sendgrid.categories: at most {MAX_CATEGORIES}, each up to 255 characters"
            )
        return cls(
            api_key=key,
            host=host,
            options=settings.sendgrid,
            clock=env.clock,
            sleep=env.sleep,
        )

    def open(self) -> None:
        """Create the API client (it holds no connection between requests)."""
        if self._client is None:
            client = sendgrid.SendGridAPIClient(
                api_key=self._api_key.get_secret_value(), host=self._host
            )
            # SendGridAPIClient takes no timeout; the python-http-client under it
            # does, and passes it to urllib for every request it builds.
            client.client.timeout = self._options.timeout
            self._client = client

    def close(self) -> None:
        """Drop the client (and with it the key) and the cached campaign body."""
        self._client = None
        self._campaign = None

    # -- sending -------------------------------------------------------------------

    def send_batch(
        self, message: CampaignMessage, recipients: Sequence[Recipient]
    ) -> list[DeliveryResult]:
        """Send in requests of up to 1000; one result per recipient, in order."""
        self.open()
        campaign = self._campaign_body(message)
        results: list[DeliveryResult | None] = [None] * len(recipients)
        unique: list[tuple[int, Recipient]] = []
        seen: set[str] = set()
        for index, recipient in enumerate(recipients):
            address = recipient.email.strip().lower()
            if (unsafe := unsafe_address(address)) is not None:
                # SendGrid writes the headers: an address it could decode again never goes.
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
        accepted_any = False
        halted: str | None = None
        for chunk in _chunks(unique, MAX_PER_REQUEST):
            people = [recipient for _, recipient in chunk]
            if halted is None and self.stop_requested:
                halted = "stopped"  # not handed over: back to pending
            if halted is not None:
                # After a request that may have left or could not get through,
                # the rest wait for a later run instead of adding to the doubt.
                outcome = [DeliveryResult(r, Outcome.DEFERRED, error=halted) for r in people]
            else:
                try:
                    outcome = self._send_request(campaign, people)
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

    def _campaign_body(self, message: CampaignMessage) -> _CampaignBody:
        if self._campaign is None or not self._campaign.is_for(message):
            self._campaign = build_campaign_body(message, self._options)
        return self._campaign

    def _send_request(
        self, campaign: _CampaignBody, people: list[Recipient]
    ) -> list[DeliveryResult]:
        """One request's recipients, retried as their answers allow."""
        results: dict[int, DeliveryResult] = {}
        pending = list(range(len(people)))
        parts = [build_personalization(campaign, person) for person in people]
        while pending:
            body = request_json(campaign, [parts[i] for i in pending])
            answer = self._post_with_retries(body, people, pending)
            if isinstance(answer, list):
                results.update(zip(pending, answer, strict=True))
                break
            errors = _provider_errors(answer.body)
            blamed = _blamed(errors, len(pending))
            if blamed is None or len(blamed) == len(pending):
                detail = "; ".join(str(e) for e in errors) or f"HTTP {answer.status}"
                error = self._clean(f"SendGrid refused the request ({answer.status}): {detail}")
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
                error = self._clean("SendGrid refused this address: " + "; ".join(messages))
                results[index] = DeliveryResult(
                    people[index], Outcome.FAILED, error=error, failure_kind=FailureKind.RECIPIENT
                )
            pending = [i for n, i in enumerate(pending) if n not in blamed]
        return [results[i] for i in range(len(people))]

    def _post_with_retries(
        self, body: str, people: list[Recipient], pending: list[int]
    ) -> list[DeliveryResult] | _Answer:
        """Final results for ``pending``, or the refusal (400/413) for the caller to read."""
        failures = 0
        throttled = 0

        def everyone(
            outcome: Outcome, error: str | None = None, mid: str | None = None
        ) -> list[DeliveryResult]:
            return [
                DeliveryResult(people[i], outcome, message_id=mid, error=error) for i in pending
            ]

        while True:
            try:
                answer = self._post(body)
            except urllib.error.URLError as exc:
                # urllib raises URLError only while connecting or writing: the
                # request never arrived whole, so nothing was accepted.
                failures += 1
                reason = f"cannot reach SendGrid: {_reason(exc)}"
                if failures > self._options.max_retries:
                    return everyone(Outcome.DEFERRED, self._clean(f"{reason} ({failures} tries)"))
                if self._wait(self._backoff(failures, BACKOFF_CAP), reason):
                    return everyone(Outcome.DEFERRED, "stopped")
                continue
            except (OSError, http.client.HTTPException) as exc:
                # The request was written, the answer never came: it may have been
                # accepted. Sending it again could mail everyone twice.
                error = self._clean(_uncertain_reason(exc, self._options.timeout))
                return everyone(Outcome.UNCERTAIN, error)
            verdict = _verdict(answer.status)
            if verdict is _Verdict.ACCEPTED:
                return everyone(Outcome.SENT, mid=_header(answer.headers, "X-Message-Id"))
            if verdict is _Verdict.REFUSED:
                return answer
            if verdict is _Verdict.MAYBE_ACCEPTED:
                return everyone(Outcome.UNCERTAIN, self._clean(_gateway_reason(answer.status)))
            detail = "; ".join(str(e) for e in _provider_errors(answer.body))
            if verdict is _Verdict.STOP:
                raise TransportStopError(self._stop_message(answer.status, detail))
            if verdict is _Verdict.RATE_LIMITED:
                throttled += 1
                if throttled > MAX_RATE_LIMIT_RETRIES:
                    error = f"SendGrid rate limit (429) did not lift after {throttled} tries"
                    return everyone(Outcome.DEFERRED, error)
                if self._wait(self._rate_limit_wait(answer, throttled), "rate limited (429)"):
                    return everyone(Outcome.DEFERRED, "stopped")
                continue
            failures += 1
            if failures > self._options.max_retries:
                error = f"SendGrid unavailable ({answer.status}): {detail or 'no details'}"
                return everyone(Outcome.DEFERRED, self._clean(f"{error} ({failures} tries)"))
            if self._wait(self._backoff(failures, BACKOFF_CAP), f"answered {answer.status}"):
                return everyone(Outcome.DEFERRED, "stopped")

    def _post(self, body: str) -> _Answer:
        try:
            # The client serializes a body itself only for exactly
            # "application/json"; with the charset named it sends our text as is.
            response = self._client.client.mail.send.post(
                request_body=body,
                request_headers={"Content-Type": JSON_CONTENT_TYPE},
                timeout=self._options.timeout,
            )
        except ProviderHTTPError as exc:
            return _Answer(exc.status_code, exc.headers, exc.body)
        return _Answer(response.status_code, response.headers, response.body)

    # -- waiting ---------------------------------------------------------------------

    def _wait(self, seconds: float, why: str) -> bool:
        """Wait before trying again; True when a stop cut the wait short."""
        _log.info("SendGrid %s; trying again in %.1f s", self._clean(why), seconds)
        if self.pause(seconds):
            _log.info("SendGrid: stopping on request; the request was not sent again")
            return True
        return False

    def _backoff(self, attempt: int, cap: float) -> float:
        """Exponential, capped, with jitter so parallel workers do not retry in step."""
        delay = min(cap, BACKOFF_BASE * 2.0 ** (attempt - 1))
        return delay / 2 + self._jitter() * delay / 2

    def _rate_limit_wait(self, answer: _Answer, attempt: int) -> float:
        """Until ``X-RateLimit-Reset`` (epoch seconds) by our clock, capped; else backoff."""
        cap = self._options.max_rate_limit_wait
        reset = _header(answer.headers, "X-RateLimit-Reset")
        try:
            wait = float(reset) - self._clock().timestamp() if reset else 0.0
        except ValueError:
            wait = 0.0
        if wait > 0:
            # up to a second more, so workers sharing the limit do not all return at once
            return min(cap, wait + self._jitter())
        return self._backoff(attempt, cap)

    # -- messages ----------------------------------------------------------------------

    def _stop_message(self, status: int, detail: str) -> str:
        detail = f": {detail}" if detail else ""
        if status in (401, 403):
            text = f"SendGrid refused the API key ({status}){detail}"
            if status == 403:
                text += " (does the key have the Mail Send permission?)"
        else:
            text = f"SendGrid refused every request ({status}){detail} (check SENDGRID_API_HOST)"
        return self._clean(text)

    def _clean(self, text: str) -> str:
        """Cut to a ledger-sized line, with the key masked should a provider echo it."""
        key = self._api_key.get_secret_value()
        if key:
            text = text.replace(key, "[redacted]")
        text = " ".join(text.split())
        if len(text) > MAX_ERROR_LENGTH:
            text = text[: MAX_ERROR_LENGTH - 1] + "…"
        return text


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


def _gateway_reason(status: int) -> str:
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = "gateway error"
    return (
        f"SendGrid's gateway answered {status} {phrase}; the request may have been "
        "accepted, so it is not sent again"
    )


def _uncertain_reason(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, TimeoutError):
        what = f"no answer from SendGrid within {timeout:g} s"
    else:
        what = f"SendGrid's answer was lost ({type(exc).__name__})"
    return f"{what}; the request may have been accepted, so it is not sent again"
