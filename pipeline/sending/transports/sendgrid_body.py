"""SendGrid's request body: the part every recipient shares, and one personalization each.

The shared part is a plain dict (the SDK's ``Mail`` helpers are several times
slower and prepend personalizations), built and encoded with orjson once per
campaign (:func:`build_campaign_body`); each request adds one personalization
per recipient, written as JSON directly (:func:`build_personalization`). The
transport (:mod:`pipeline.sending.transports.sendgrid`) only posts what this builds.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson

from pipeline.render import PLACEHOLDERS, placeholder
from pipeline.render.message import header_safe
from pipeline.sending.transports.base import CampaignMessage, Recipient
from pipeline.sending.transports.sendgrid_settings import SendGridSettings


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
class CampaignBody:
    """The part of every request of one campaign that is the same for all recipients."""

    message: CampaignMessage  # held, so the identity check below can never see a reused id
    shared: dict[str, Any]
    substitutions: tuple[_Substitution, ...]
    #: The request body up to its personalizations: ``{...shared..., "personalizations":[``.
    prefix: bytes
    #: (``"key":`` as JSON, value name, HTML-escaped) of each substitution.
    substitution_keys: tuple[tuple[bytes, str, bool], ...]
    #: The campaign's name as a JSON string (every personalization's custom_args).
    campaign_json: bytes

    def is_for(self, message: CampaignMessage) -> bool:
        """Whether this body was built for ``message`` (same issue object, same campaign)."""
        cached = self.message
        return cached is message or (
            cached.issue is message.issue
            and cached.campaign == message.campaign
            and cached.sender == message.sender
        )


def build_campaign_body(message: CampaignMessage, options: SendGridSettings) -> CampaignBody:
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
    whole = _json_bytes({**shared, "personalizations": []})
    return CampaignBody(
        message,
        shared,
        substitutions,
        prefix=whole[: -len(b"]}")],
        substitution_keys=tuple(
            (json_string(s.key) + b":", s.name, s.html_escaped) for s in substitutions
        ),
        campaign_json=json_string(message.campaign),
    )


#: The headers of every personalization; RFC 8058 one-click. SendGrid reserves neither name.
_ONE_CLICK: Final = "List-Unsubscribe=One-Click"


def json_string(value: str) -> bytes:
    """``value`` as a JSON string (orjson: UTF-8; the standard library for a lone surrogate)."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        return _ascii_json(value)


def _ascii_json(value: object) -> bytes:
    # The standard library escapes everything outside ASCII, lone surrogates too.
    return json.dumps(value).encode()


def _json_bytes(value: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        return _ascii_json(value)


def build_personalization(campaign: CampaignBody, recipient: Recipient) -> bytes:
    """One recipient's envelope, as JSON: address, substitutions, custom_args, unsubscribe headers.

    Called once per recipient, so it writes the JSON itself from parts worked
    out once per campaign (the keys, the campaign's name): building a dict of
    dicts and serializing it cost several times as much, and was a fifth of
    a send's time. Only the values are encoded here, by orjson (or, for a
    value it refuses, the standard library), so the text is as valid as theirs.
    """
    try:
        return _personalization(campaign, recipient, orjson.dumps)
    except orjson.JSONEncodeError:  # a lone surrogate: valid JSON all the same
        return _personalization(campaign, recipient, _ascii_json)


def _personalization(
    campaign: CampaignBody, recipient: Recipient, string: Callable[[str], bytes]
) -> bytes:
    values = recipient.values()
    escape = html.escape
    substitutions = b",".join(
        [
            key + string(escape(values[name], quote=True) if escaped else values[name])
            for key, name, escaped in campaign.substitution_keys
        ]
    )
    ids = b""
    if recipient.delivery_id is not None:
        ids += b',"delivery_id":"%d"' % recipient.delivery_id
    if recipient.subscriber_id is not None:
        ids += b',"subscriber_id":"%d"' % recipient.subscriber_id
    return _PERSONALIZATION % (
        string(recipient.email),
        substitutions,
        campaign.campaign_json,
        ids,
        string(f"<{header_safe(recipient.unsubscribe_url)}>"),
    )


# RFC 2369 List-Unsubscribe + RFC 8058 one-click, in every personalization.
_PERSONALIZATION: Final = (
    b'{"to":[{"email":%s}],"substitutions":{%s},"custom_args":{"campaign":%s%s},'
    b'"headers":{"List-Unsubscribe":%s,"List-Unsubscribe-Post":"' + _ONE_CLICK.encode() + b'"}}'
)


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


def request_json(campaign: CampaignBody, personalizations: Sequence[bytes]) -> bytes:
    """A whole request body, JSON in UTF-8: the shared part and these personalizations.

    The shared part (the issue's HTML and text, most of every request) is
    encoded once per campaign (:attr:`CampaignBody.prefix`); a request only
    joins bytes. UTF-8 throughout, hence the charset in
    :data:`~pipeline.sending.transports.sendgrid.JSON_CONTENT_TYPE`.
    """
    return _Payload(b"".join((campaign.prefix, b",".join(personalizations), b"]}")))
