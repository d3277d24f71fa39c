"""Copies outside the ledger: a preview written to files, and a test send to one address.

Both show an issue exactly as a subscriber would get it (personal values filled
in for a sample recipient) without planning a campaign, so nothing here touches
the delivery ledger. :class:`pipeline.newsletter.Newsletter` exposes them as
``preview`` and ``test_send``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.errors import PipelineError
from pipeline.render import Personalizer, RenderedIssue
from pipeline.render.message import OutgoingEmail, build_message, new_message_id
from pipeline.sending.transports import CampaignMessage, Outcome, make_transport
from pipeline.sending.transports.outbox import write_atomically
from pipeline.subscribers import normalize_email

if TYPE_CHECKING:
    from pipeline.newsletter import Newsletter


#: Who a preview is addressed to (a reserved example domain: it reaches no one).
SAMPLE_ADDRESS = "subscriber@example.com"


@dataclass(frozen=True)
class PreviewFiles:
    """Where ``preview`` wrote its files."""

    html: Path
    text: Path
    eml: Path


def preview_parts(newsletter: Newsletter, issue: RenderedIssue) -> tuple[str, str]:
    """The issue's HTML and text parts as a sample subscriber gets them."""
    recipient = newsletter.sample_recipient(SAMPLE_ADDRESS)
    personalizer = Personalizer(issue)
    return personalizer.html(recipient.values()), personalizer.text(recipient.values())


def write_preview(newsletter: Newsletter, slug: str, out_dir: Path) -> PreviewFiles:
    """Write ``SLUG.html``, ``SLUG.txt`` and ``SLUG.eml`` as a subscriber would get them."""
    issue = newsletter.render(slug)
    recipient = newsletter.sample_recipient(SAMPLE_ADDRESS)
    html, text = preview_parts(newsletter, issue)
    sender = newsletter.sender()
    email = OutgoingEmail(
        sender=sender,
        to=recipient.email,
        subject=issue.subject,
        text=text,
        html=html,
        unsubscribe_url=recipient.unsubscribe_url,
        date=newsletter.clock(),
        message_id=new_message_id(sender),
        campaign=slug,
    )
    files = PreviewFiles(
        html=out_dir / f"{slug}.html", text=out_dir / f"{slug}.txt", eml=out_dir / f"{slug}.eml"
    )
    write_atomically(files.html, html.encode("utf-8"))
    write_atomically(files.text, text.encode("utf-8"))
    write_atomically(files.eml, build_message(email).as_bytes())
    return files


def send_test(newsletter: Newsletter, slug: str, to: str) -> str:
    """One copy to ``to`` through the configured transport, outside the ledger."""
    address = normalize_email(to)
    issue = newsletter.render(slug)
    transport = make_transport(newsletter.settings, newsletter.clock)
    message = CampaignMessage(campaign=f"test-{slug}", issue=issue, sender=newsletter.sender())
    with transport:
        [result] = transport.send_batch(message, [newsletter.sample_recipient(address)])
    if result.outcome is not Outcome.SENT:
        raise PipelineError(f"test send to {address} failed: {result.error}")
    return result.message_id or ""
