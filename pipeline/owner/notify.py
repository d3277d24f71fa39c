"""The one way a message reaches the owner: recorded, deduplicated, logged, then sent.

Each message is reserved first in ``notifications`` under (kind, subject,
day): a restart or a second scheduler the same day finds the reservation and
sends nothing, so a fault that repeats every few seconds still gives one
email a day. It goes through the configured transport as one
:class:`~pipeline.render.message.OutgoingEmail` per owner address, like
``test-send``, outside the subscriber ledger. Each message is also one log
record on ``pipeline.owner`` carrying its fields (one JSON line under
``--log-json``). A failure to tell the owner is logged and never fails the
caller: a receipt must not turn a finished campaign into an error.
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

from pipeline import links
from pipeline.newsletter import Newsletter
from pipeline.render import RenderedIssue
from pipeline.render.message import OutgoingEmail, new_message_id
from pipeline.sending.transports import CampaignMessage, Outcome, Recipient, make_transport
from pipeline.sending.transports.base import PerMessageTransport
from pipeline.store.notifications import NotificationStore

log = logging.getLogger("pipeline.owner")

#: The outbox folder (and campaign header) of every message to the owner.
OWNER_CAMPAIGN = "owner-notifications"
#: ``once`` for a message sent once per subject ever (a campaign's receipt).
EVER = ""

_URL = re.compile(r"https?://[^\s<>\"]+")


@dataclass(frozen=True)
class Message:
    """What the owner reads: a subject and plain lines (URLs become links in the HTML part)."""

    kind: str
    about: str  # the subject key: a slug, a firing's time, a scheduler
    subject: str
    lines: tuple[str, ...]
    #: One-line summary kept in ``notifications`` and the log.
    summary: str
    #: Once per day (the default) or once ever (:data:`EVER`) for this kind and subject.
    once_a_day: bool = True


def _html(lines: Sequence[str]) -> str:
    def para(line: str) -> str:
        escaped = html.escape(line)
        linked = _URL.sub(lambda m: f'<a href="{m.group(0)}">{m.group(0)}</a>', escaped)
        return f"<p>{linked}</p>" if line else ""

    body = "\n".join(para(line) for line in lines)
    return f'<!doctype html><html><body style="font-family:sans-serif">\n{body}\n</body></html>'


def notify(newsletter: Newsletter, message: Message) -> bool:
    """Send ``message`` to ``[owner] email`` unless already sent today; True when sent now."""
    owners = newsletter.settings.owner.email
    if not owners:
        return False
    now = newsletter.clock()
    day = now.astimezone(newsletter.settings.schedule.tz).date().isoformat()
    store = NotificationStore(newsletter.sessions)
    reserved = store.reserve(
        message.kind,
        message.about,
        day if message.once_a_day else EVER,
        now,
        recipients=owners,
        subject=message.subject,
        summary=message.summary,
    )
    if reserved is None:
        log.debug("owner already told today: %s %s", message.kind, message.about)
        return False
    try:
        reached = _deliver(newsletter, message, owners, reserved)
    except Exception as exc:  # any transport's error: never the caller's problem
        reached, error = (), f"{type(exc).__name__}: {exc}"
    else:
        error = "refused by the transport" if not reached else ""
    if not reached:
        store.release(reserved)  # the next try may send it
        log.error(
            "could not tell the owner (%s): %s",
            error,
            message.summary,
            extra={"notification": message.kind, "about": message.about},
        )
        return False
    store.mark_sent(reserved, reached, newsletter.clock())
    log.info(
        "owner notified (%s): %s",
        message.kind,
        message.summary,
        extra={
            "notification": message.kind,
            "about": message.about,
            "to": list(reached),
            "subject": message.subject,
        },
    )
    return True


def _deliver(
    newsletter: Newsletter, message: Message, owners: tuple[str, ...], row_id: int
) -> tuple[str, ...]:
    """Hand one email per owner address to the transport; the addresses it took."""
    sender = newsletter.sender()
    text = "\n".join(message.lines) + "\n"
    body = _html(message.lines)
    unsubscribe = links.unsubscribe_page_url(newsletter.settings.web.base_url)
    transport = make_transport(newsletter.settings, newsletter.clock)
    reached: list[str] = []
    with transport:
        for index, address in enumerate(owners):
            # The row id names the outbox file, so two messages never share one.
            recipient = Recipient(
                email=address,
                first_name="",
                unsubscribe_url=unsubscribe,
                delivery_id=row_id * 100 + index,
            )
            if isinstance(transport, PerMessageTransport):
                email = OutgoingEmail(
                    sender=sender,
                    to=address,
                    subject=message.subject,
                    text=text,
                    html=body,
                    unsubscribe_url=unsubscribe,
                    date=newsletter.clock(),
                    message_id=new_message_id(sender),
                    campaign=OWNER_CAMPAIGN,
                )
                result = transport.deliver(email, recipient)
            else:  # a batch API (SendGrid) takes a rendered issue, as test-send gives it
                issue = RenderedIssue(
                    slug=OWNER_CAMPAIGN, subject=message.subject, preheader="", html=body, text=text
                )
                [result] = transport.send_batch(
                    CampaignMessage(campaign=OWNER_CAMPAIGN, issue=issue, sender=sender),
                    [recipient],
                )
            if result.outcome is Outcome.SENT:
                reached.append(address)
            else:
                log.warning("owner address %s not reached: %s", address, result.error)
    return tuple(reached)
