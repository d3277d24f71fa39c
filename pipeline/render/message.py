"""Build one RFC 5322 message for one recipient.

Every header value passes through :func:`header_safe`, so a title, name or
address carrying CR/LF can never start a header of its own. That is not
enough on its own: Python's email package decodes RFC 2047 encoded-words
(``=?utf-8?q?...=0d=0a...?=``) in the values it is given and, on some patch
versions (3.11.7, 3.12.1), writes the decoded CR/LF raw. So, whatever the
input and the Python version, the bytes are checked where they are written:
:data:`HEADER_POLICY` refuses (:class:`UnsafeHeaderError`) any folded header
with a line break that is not folding whitespace, and :func:`build_message`
refuses an address holding an encoded-word and checks that ``To`` comes out
as exactly the one address asked for. The List-Unsubscribe pair (RFC 2369 +
RFC 8058 one-click) is set here, centrally, for every transport that sends
whole messages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP, EmailPolicy
from email.utils import format_datetime, make_msgid
from typing import TYPE_CHECKING

from pipeline.errors import UnsafeHeaderError
from pipeline.subscribers.addresses import ENCODED_WORD

_WHITESPACE = re.compile(r"\s+")
# In a folded header (its final CRLF removed): a CRLF not followed by folding
# whitespace (another header starts), a bare CR or LF, or a continuation line
# of whitespace only (which some parsers read as the end of the headers).
# CPython >= 3.11.10 / 3.12.5 runs a similar test (verify_generated_headers);
# 3.11.7 does not, so it is done here on every version.
_UNSAFE_BREAK = re.compile(r"\r\n(?![ \t])|\r(?!\n)|(?<!\r)\n|\r\n[ \t]*(?:\r|\n|$)")


def _check_folded(name: str, folded: str) -> None:
    if not folded.endswith("\r\n") or _UNSAFE_BREAK.search(folded[:-2]):
        raise UnsafeHeaderError(
            f"refusing to write the {name} header: its value would contain a line break"
        )


if TYPE_CHECKING:
    _EmailPolicy = EmailPolicy[EmailMessage]
else:  # not subscriptable at run time
    _EmailPolicy = EmailPolicy


class _CheckedPolicy(_EmailPolicy):
    """The SMTP policy, refusing any header whose folded bytes break the line."""

    def fold(self, name: str, value: str) -> str:
        folded = str(super().fold(name, value))
        _check_folded(name, folded)
        return folded

    def fold_binary(self, name: str, value: str) -> bytes:
        folded = super().fold_binary(name, value)
        _check_folded(name, folded.decode("latin-1"))  # one char per byte: breaks stay put
        return folded


# Bodies are encoded under the SMTP policy (quoted-printable lines within 76
# characters, 7-bit safe for any relay). Headers are then written with lines
# up to RFC 5322's hard limit: at 78 a long unsubscribe URL cannot be folded at
# a space and would become an RFC 2047 encoded-word, which mail clients do not
# decode in List-Unsubscribe.
HEADER_POLICY = _CheckedPolicy(linesep="\r\n", max_line_length=998)


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


def unsafe_address(email: str) -> str | None:
    """Why ``email`` must not go into a header (stored before it was refused at entry), or None."""
    # Address() would hand an encoded-word on to the parser, which decodes it
    # (to CR/LF, or to a second address) when the header is written.
    if ENCODED_WORD in email or not email.isprintable():
        return f"refusing to write the address {email!r} into a header (encoded-word or control)"
    return None


def _address(email: str, name: str | None = None) -> Address:
    if (reason := unsafe_address(email)) is not None:
        raise UnsafeHeaderError(reason)
    if ENCODED_WORD in (name or ""):
        raise UnsafeHeaderError(f"refusing to write the name {name!r} into a header")
    username, _, domain = email.strip().rpartition("@")
    return Address(display_name=header_safe(name or ""), username=username, domain=domain)


def build_message(email: OutgoingEmail) -> EmailMessage:
    """The MIME message: multipart/alternative with text/plain first, then text/html.

    Raises :class:`UnsafeHeaderError` for a header that would not come out as
    one line (here, or when the message is serialized with its policy).
    """
    message = EmailMessage(policy=SMTP)
    message["From"] = _address(email.sender.email, email.sender.name)
    to = _address(email.to)
    message["To"] = to
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
    # The To line as it will be written: the one address asked for, nothing else.
    if message.policy.fold("To", message["To"]) != f"To: {to.addr_spec}\r\n":
        raise UnsafeHeaderError(f"refusing to write the address {email.to!r} into a header")
    return message
