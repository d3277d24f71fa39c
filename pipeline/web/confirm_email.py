"""The double opt-in email: rendered from a small template, sent like a test send.

It goes through the configured transport outside the ledger (as
``Newsletter.test_send`` does), as campaign ``confirm-subscription``: the
outbox writes it to ``outbox/confirm-subscription/``, SendGrid tags it with
that name and the subscriber's id.
"""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from pipeline.errors import PipelineError, TransportError
from pipeline.newsletter import Newsletter
from pipeline.render import RenderedIssue, Theme
from pipeline.sending.transports import CampaignMessage, Outcome, Recipient, make_transport

#: The "campaign" name confirmation emails travel under (outbox folder, custom_args).
CONFIRM_CAMPAIGN = "confirm-subscription"

_EMAILS = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates" / "email"),
    # The .txt twin must not be HTML-escaped.
    autoescape=select_autoescape(enabled_extensions=("html",), default=False),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
)


def render_confirm_email(newsletter: Newsletter, confirm_url: str) -> RenderedIssue:
    """The confirmation email for one link (nothing personal but the link)."""
    settings = newsletter.settings
    subject = f"Please confirm your subscription to {settings.clinic.name}"
    valid_hours = settings.web.confirm_max_age_hours
    context = {
        "subject": subject,
        "preheader": "One tap and you're subscribed.",
        "clinic": settings.clinic,
        "theme": Theme.from_brand(settings.clinic.brand_color),
        "confirm_url": confirm_url,
        "valid_hours": valid_hours,
    }
    return RenderedIssue(
        slug=CONFIRM_CAMPAIGN,
        subject=subject,
        preheader=str(context["preheader"]),
        html=_EMAILS.get_template("confirm.html").render(context),
        text=_EMAILS.get_template("confirm.txt").render(context),
    )


def send_confirm_email(
    newsletter: Newsletter,
    *,
    to: str,
    subscriber_id: int,
    confirm_url: str,
    unsubscribe_url: str,
) -> None:
    """Send one confirmation email; :class:`TransportError` if it did not leave.

    The unsubscribe link lets someone who never asked say "not me" in one
    click (mail clients show it from the List-Unsubscribe header).
    """
    issue = render_confirm_email(newsletter, confirm_url)
    message = CampaignMessage(campaign=CONFIRM_CAMPAIGN, issue=issue, sender=newsletter.sender())
    recipient = Recipient(
        email=to,
        first_name=newsletter.settings.email.first_name_fallback,
        unsubscribe_url=unsubscribe_url,
        subscriber_id=subscriber_id,
    )
    try:
        with make_transport(newsletter.settings, newsletter.clock) as transport:
            [result] = transport.send_batch(message, [recipient])
    except (PipelineError, OSError) as error:
        raise TransportError(f"confirmation email not sent: {error}") from error
    if result.outcome is not Outcome.SENT:
        raise TransportError(f"confirmation email not sent: {result.outcome}")
