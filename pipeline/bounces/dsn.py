"""Delivery status notifications in, bounced subscribers out.

flufl.bounce reads the message (RFC 3464 DSNs first, then the older formats
of Exim, Postfix, Exchange and others) and returns only the *permanent*
failures: a 4.x.x "delayed" report, an auto-reply or any other mail gives
none and is left alone (counted as ``not_bounces``). A permanent failure for a
stored subscriber marks them ``bounced`` with :func:`mark_bounced`, which also
suppresses their rows still pending in any campaign; one for an address we do
not know is counted, nothing more.
"""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from email.message import Message

from flufl.bounce import scan_message
from sqlalchemy.orm import Session, sessionmaker

from pipeline.errors import InvalidAddressError
from pipeline.store.bounce_mail import subscribers_by_address
from pipeline.store.failures import mark_bounced
from pipeline.store.models import SubscriberStatus
from pipeline.subscribers.addresses import normalize_address


def permanent_failures(message: Message) -> frozenset[str]:
    """The normalized addresses a bounce message reports as permanently failed."""
    found: set[str] = set()
    for raw in scan_message(message):
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        try:
            found.add(normalize_address(text.strip().strip("<>")))
        except InvalidAddressError:
            continue  # a detector's misreading; nobody we could mark
    return frozenset(found)


def parse(data: bytes) -> Message:
    """A message from its bytes, in the compat32 policy flufl.bounce expects."""
    return email.message_from_bytes(data, policy=email.policy.compat32)


@dataclass(frozen=True)
class BounceReport:
    """What one read of the mailbox found."""

    messages: int = 0
    #: Messages without a permanent failure in them (delays, auto-replies, anything else).
    not_bounces: int = 0
    #: Known subscribers marked bounced by this read.
    bounced: tuple[str, ...] = ()
    #: Known subscribers who had already left (bounced, unsubscribed, complained).
    already_left: tuple[str, ...] = ()
    #: Permanent failures for addresses that are not subscribers.
    unknown: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict[str, object]:
        """The ``newsletter bounces --json`` object."""
        return {
            "messages": self.messages,
            "not_bounces": self.not_bounces,
            "bounced": list(self.bounced),
            "already_left": list(self.already_left),
            "unknown": list(self.unknown),
        }


def apply_bounces(
    sessions: sessionmaker[Session], messages: Iterable[Message], now: datetime
) -> BounceReport:
    """Mark the known subscribers among the permanent failures in ``messages`` bounced."""
    count = not_bounces = 0
    failed: set[str] = set()
    for message in messages:
        count += 1
        addresses = permanent_failures(message)
        if not addresses:
            not_bounces += 1
        failed |= addresses
    known = subscribers_by_address(sessions, failed)
    left = {str(s) for s in (SubscriberStatus.UNSUBSCRIBED, SubscriberStatus.BOUNCED)}
    left.add(str(SubscriberStatus.COMPLAINED))
    to_mark = sorted(a for a, (_, status) in known.items() if status not in left)
    mark_bounced(sessions, [known[a][0] for a in to_mark], now)
    return BounceReport(
        messages=count,
        not_bounces=not_bounces,
        bounced=tuple(to_mark),
        already_left=tuple(sorted(a for a in known if a not in to_mark)),
        unknown=tuple(sorted(failed - known.keys())),
    )
