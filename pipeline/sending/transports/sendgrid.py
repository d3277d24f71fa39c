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
the recipients not handed over then come back ``DEFERRED``. How each verdict is
acted on (retries, backoff, doubt) is the shared HTTP layer's
(:mod:`pipeline.sending.transports.http`); this module says what SendGrid's
answers mean (:data:`_STATUS_VERDICTS`) and how its body is built.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

import sendgrid
from pydantic import SecretStr
from python_http_client.exceptions import HTTPError as ProviderHTTPError

from pipeline.errors import ConfigError
from pipeline.sending.transports.base import CampaignMessage, Recipient, Sleep
from pipeline.sending.transports.http import (
    DUPLICATE_ERROR,
    MAX_RATE_LIMIT_RETRIES,
    HttpAnswer,
    HttpTransport,
    ProviderError,
    Verdict,
    header,
)
from pipeline.sending.transports.sendgrid_body import (
    CampaignBody,
    build_campaign_body,
    build_personalization,
    request_json,
)
from pipeline.sending.transports.sendgrid_settings import SendGridSettings

if TYPE_CHECKING:
    from pipeline.sending.transports import TransportEnv

__all__ = [
    "DUPLICATE_ERROR",
    "MAX_CATEGORIES",
    "MAX_PER_REQUEST",
    "MAX_RATE_LIMIT_RETRIES",
    "SendGridSettings",
    "SendGridTransport",
    "build_campaign_body",
    "build_personalization",
    "request_json",
]

#: SendGrid's documented limit of personalizations (and recipients) per request.
MAX_PER_REQUEST: Final = 1000
#: SendGrid allows at most this many categories on a message.
MAX_CATEGORIES: Final = 10
#: Exponential backoff: the first delay in seconds (before jitter); the shared
#: layer reads it through :attr:`SendGridTransport.backoff_base` at each wait.
BACKOFF_BASE: Final = 1.0
#: What request bodies are sent as: JSON in UTF-8, said so (see :func:`request_json`).
JSON_CONTENT_TYPE: Final = "application/json; charset=utf-8"


#: SendGrid's HTTP status -> verdict; unlisted codes go by class (see :func:`~.http.verdict_for`).
_STATUS_VERDICTS: Final[dict[int, Verdict]] = {
    200: Verdict.ACCEPTED,  # what sandbox mode answers
    202: Verdict.ACCEPTED,
    400: Verdict.REFUSED,
    413: Verdict.REFUSED,
    401: Verdict.STOP,
    403: Verdict.STOP,
    408: Verdict.RETRY,  # the server gave up reading the request: nothing accepted
    429: Verdict.RATE_LIMITED,
    # A 5xx is read by what it says about the request. 502 Bad Gateway and
    # 504 Gateway Timeout come from a proxy in front of the API: it had
    # forwarded the whole request and then got a bad answer or none in time,
    # while the service behind it may well have queued the mail. Sent again,
    # the whole batch could arrive twice, so they count as a lost answer.
    502: Verdict.MAYBE_ACCEPTED,
    504: Verdict.MAYBE_ACCEPTED,
    # 500 is what SendGrid documents as "an error on our side" and 503 as
    # "service unavailable": the API itself answered that it did not take the
    # request, so retrying with backoff cannot send anything twice. Other 5xx
    # codes (501, 505, ...) are refusals of the same kind (see verdict_for).
    500: Verdict.RETRY,
    503: Verdict.RETRY,
}


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


# -- reading answers -------------------------------------------------------------------

_PERSONALIZATION_FIELD: Final = re.compile(r"^personalizations(?:\.|\[)(\d+)")


def _provider_errors(body: bytes | None) -> list[ProviderError]:
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
            found.append(ProviderError(str(item["message"]), field if usable else None))
    return found


def _blamed(errors: Sequence[ProviderError], count: int) -> dict[int, list[str]] | None:
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


# -- the transport ---------------------------------------------------------------------


class SendGridTransport(HttpTransport):
    """Sends a campaign batch through SendGrid, up to 1000 recipients a request.

    Within one ``send_batch`` call an address goes out once: a second recipient
    with the same address (compared case-insensitively) is ``FAILED`` with
    "duplicate address in batch" rather than mailed twice.
    """

    name = "sendgrid"
    label = "SendGrid"
    status_verdicts = _STATUS_VERDICTS
    max_per_request = MAX_PER_REQUEST

    def __init__(
        self,
        *,
        api_key: SecretStr,
        host: str,
        options: SendGridSettings,
        clock: Callable[[], datetime],
        sleep: Sleep | None = None,
        **kwargs: Any,
    ) -> None:
        """``sleep`` is for tests: without it, waits end as soon as a stop is requested."""
        super().__init__(
            secret=api_key,
            timeout=options.timeout,
            max_retries=options.max_retries,
            max_rate_limit_wait=options.max_rate_limit_wait,
            clock=clock,
            sleep=sleep,
            **kwargs,
        )
        self._api_key = api_key
        self._host = host.rstrip("/")
        self._options = options
        self._client: Any = None
        self._campaign: CampaignBody | None = None

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

    @property
    def backoff_base(self) -> float:
        """:data:`BACKOFF_BASE`, read at each wait."""
        return BACKOFF_BASE

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

    # -- SendGrid's parts of the shared steps --------------------------------------------

    def _campaign_body(self, message: CampaignMessage) -> CampaignBody:
        if self._campaign is None or not self._campaign.is_for(message):
            self._campaign = build_campaign_body(message, self._options)
        return self._campaign

    def recipient_parts(self, message: CampaignMessage, people: Sequence[Recipient]) -> list[Any]:
        """One personalization per recipient."""
        campaign = self._campaign_body(message)
        return [build_personalization(campaign, person) for person in people]

    def request_body(self, message: CampaignMessage, parts: list[Any]) -> bytes:
        """The campaign's shared part plus these personalizations, as JSON in UTF-8."""
        return request_json(self._campaign_body(message), parts)

    def post(self, body: str | bytes) -> HttpAnswer:
        """POST /v3/mail/send through the official client."""
        try:
            # The client serializes a body itself only for exactly
            # "application/json"; with the charset named it sends ours as is.
            response = self._client.client.mail.send.post(
                request_body=_Encoded(body),
                request_headers={"Content-Type": JSON_CONTENT_TYPE},
                timeout=self._options.timeout,
            )
        except ProviderHTTPError as exc:
            return HttpAnswer(exc.status_code, exc.headers, exc.body)
        return HttpAnswer(response.status_code, response.headers, response.body)

    def answer_errors(self, answer: HttpAnswer) -> list[ProviderError]:
        """SendGrid's ``errors[]``."""
        return _provider_errors(answer.body)

    def blamed(self, errors: Sequence[ProviderError], count: int) -> dict[int, list[str]] | None:
        """Errors whose field is ``personalizations[n]`` blame recipient n alone."""
        return _blamed(errors, count)

    def message_id(self, answer: HttpAnswer) -> str | None:
        """``X-Message-Id`` of an accepted request."""
        return header(answer.headers, "X-Message-Id")

    def rate_limit_wait(self, answer: HttpAnswer) -> float | None:
        """Until ``X-RateLimit-Reset`` (epoch seconds) by our clock."""
        reset = header(answer.headers, "X-RateLimit-Reset")
        try:
            return float(reset) - self._clock().timestamp() if reset else None
        except ValueError:
            return None

    def stop_message(self, status: int, detail: str) -> str:
        """Which setting to check: the key (401/403) or the API host (any other 4xx)."""
        detail = f": {detail}" if detail else ""
        if status in (401, 403):
            text = f"SendGrid refused the API key ({status}){detail}"
            if status == 403:
                text += " (does the key have the Mail Send permission?)"
        else:
            text = f"SendGrid refused every request ({status}){detail} (check SENDGRID_API_HOST)"
        return text


class _Encoded:
    """A ready body as python-http-client takes one: it calls ``encode("utf-8")`` on it.

    The body is already UTF-8 bytes; decoding it to text only for the client
    to encode it again cost two copies of every 600 KB request.
    """

    __slots__ = ("_body",)

    def __init__(self, body: str | bytes) -> None:
        self._body = body

    def encode(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        body = self._body
        return body if isinstance(body, bytes) else body.encode(encoding, errors)
