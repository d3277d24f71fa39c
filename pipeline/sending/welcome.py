"""The welcome email for one newsletter folder: turn it on, and send who is waiting.

:func:`prepare_welcome` renders ``templates/welcome.mjml`` and makes sure the
``welcome`` campaign exists; the id it returns is handed to whatever makes
someone active (``add_subscriber``, ``import_csv``, ``confirm_subscription``),
which adds their ledger row in its own transaction (:mod:`pipeline.store.welcome`).
:func:`send_welcomes` then sends the pending rows through the ordinary
campaign path (``Newsletter.send``): the same runner, claims and crash rules as
an issue, so a crash leaves a welcome ``uncertain``, never sent twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline import links
from pipeline.content.reserved import WELCOME_SLUG
from pipeline.render.welcome import has_welcome, render_welcome, welcome_series
from pipeline.store import welcome as stored

if TYPE_CHECKING:
    from pipeline.newsletter import Newsletter, SendReport


def welcome_enabled(newsletter: Newsletter) -> bool:
    """Whether the folder's own templates include a welcome email."""
    return has_welcome(newsletter.settings.templates_path)


def prepare_welcome(newsletter: Newsletter) -> int | None:
    """The welcome campaign's id, with today's rendering stored; None when there is no welcome.

    Renders first, so a broken template is reported before anyone is
    enrolled for an email that cannot be built.
    """
    if not welcome_enabled(newsletter):
        return None
    settings = newsletter.settings
    series = welcome_series(settings, newsletter.articles().articles)
    issue = render_welcome(
        settings, series, archive_url=links.archive_index_url(settings.web.base_url)
    )
    return stored.ensure_campaign(
        newsletter.sessions, issue, settings.sending.transport, newsletter.clock()
    )


def send_welcomes(newsletter: Newsletter, *, by_scheduler: bool = False) -> SendReport | None:
    """Send every pending welcome now; None when none is waiting (or there is no welcome).

    A repeat sends nothing twice: it is a resume of the one ``welcome`` campaign.
    """
    welcome_id = stored.campaign_id(newsletter.sessions)
    if welcome_id is None or not stored.has_pending(newsletter.sessions, welcome_id):
        return None
    if prepare_welcome(newsletter) is None:
        # The owner removed the templates: those waiting stay pending (shown by
        # `status welcome`), and go if the templates come back.
        return None
    return newsletter.send(WELCOME_SLUG, by_scheduler=by_scheduler)
