"""Build one RFC 5322 message for one recipient.

Every header value passes through :func:`header_safe`, so a title, name or
address carrying CR/LF can never start a header of its own. The
List-Unsubscribe pair (RFC 2369 + RFC 8058 one-click) is set here, centrally,
for every transport that sends whole messages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid

_WHITESPACE = re.compile(r"\s+")
# Bodies are encoded under the SMTP policy (quoted-printable lines within 76
# characters, 7-bit safe for any relay). Headers are then written with lines
# up to RFC 5322's hard limit: at 78 a long unsubscribe URL cannot be folded at
# a space and would become an RFC 2047 encoded-word, which mail clients do not
# decode in List-Unsubscribe.
HEADER_POLICY = SMTP.clone(max_line_length=998)


def header_safe(value: str) -> str:
    """Collapse every run of whitespace (CR and LF included) into one space."""
    # Fast path for the common case (addresses, URLs: one per recipient). Every
    # character ``\s`` matches except the plain space is non-printable.
    if value.isprintable() and " " not in value:
        return value
    return _WHITESPACE.sub(" ", value).strip()


@dataclass(frozen=True)
class Sender:
    """Who the newsletter comes from."""

    email: str
    name: str | None = None
    reply_to: str | None = None

    @property
    def domain(self) -> str:
        """The sender's domain, used for Message-IDs."""
        return self.email.rpartition("@")[2] or "localhost"


@dataclass(frozen=True)
class OutgoingEmail:
    """One personalized email, ready to become MIME."""

    sender: Sender
    to: str
    subject: str
    text: str
    html: str
    unsubscribe_url: str
    date: datetime
    message_id: str | None = None
    campaign: str | None = None


def new_message_id(sender: Sender) -> str:
    """A fresh, globally unique Message-ID in the sender's domain."""
    return make_msgid(domain=sender.domain)


def _address(email: str, name: str | None = None) -> Address:
    username, _, domain = header_safe(email).rpartition("@")
    return Address(display_name=header_safe(name or ""), username=username, domain=domain)


def build_message(email: OutgoingEmail) -> EmailMessage:
    """The MIME message: multipart/alternative with text/plain first, then text/html."""
    message = EmailMessage(policy=SMTP)
    message["From"] = _address(email.sender.email, email.sender.name)
    message["To"] = _address(email.to)
    if email.sender.reply_to:
        message["Reply-To"] = _address(email.sender.reply_to)
    message["Subject"] = header_safe(email.subject)
    message["Date"] = format_datetime(email.date)
    message["Message-ID"] = email.message_id or new_message_id(email.sender)
    message["List-Unsubscribe"] = f"<{header_safe(email.unsubscribe_url)}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    if email.campaign:
        message["X-Newsletter-Campaign"] = header_safe(email.campaign)
    message["MIME-Version"] = "1.0"
    # Text first: clients show the last alternative they understand.
    message.set_content(email.text, subtype="plain", charset="utf-8", cte="quoted-printable")
    message.add_alternative(email.html, subtype="html", charset="utf-8", cte="quoted-printable")
    # An address with a non-ASCII local part cannot be written as an encoded
    # word; it travels as raw UTF-8 (RFC 6532), which needs SMTPUTF8 to relay.
    message.policy = HEADER_POLICY if email.to.isascii() else HEADER_POLICY.clone(utf8=True)
    return message
