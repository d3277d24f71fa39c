"""Every check of a preflight, in one call: :func:`run_preflight`.

Kept out of the package's ``__init__`` so that importing
:mod:`pipeline.preflight` (every ``newsletter`` command does, to register the
``preflight`` command) does not import dnspython and checkdmarc (~0.5 s).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.links import unsubscribe_url
from pipeline.preflight.dns import dns_checks
from pipeline.preflight.email import collect, email_checks
from pipeline.preflight.links import link_checks, link_targets
from pipeline.preflight.photos import photo_check
from pipeline.preflight.report import Check, PreflightReport, warned
from pipeline.preflight.web import web_checks

if TYPE_CHECKING:
    from pipeline.newsletter import Newsletter

SAMPLE_ADDRESS = "subscriber@example.com"


def _default_slug(newsletter: Newsletter) -> str | None:
    """The next due article, else the first in the queue, else none."""
    due = newsletter.next_due()
    if due is not None:
        return due.slug
    queue = newsletter.queue()
    return queue[0].slug if queue else None


def run_preflight(
    newsletter: Newsletter,
    slug: str | None = None,
    *,
    links: bool = True,
    web: bool = True,
) -> PreflightReport:
    """Every check for ``slug`` (default: the next article to go out)."""
    settings = newsletter.settings
    checks: list[Check] = list(dns_checks(settings))
    if web:
        checks.extend(web_checks(settings.web.base_url, timeout=settings.preflight.link_timeout))
    slug = slug or _default_slug(newsletter)
    if slug is None:
        checks.append(
            warned("email", "Email", "no queued article: the email itself was not checked")
        )
        return PreflightReport(slug=None, checks=tuple(checks))
    issue = newsletter.render(slug)
    # A real signed link, so the size counted is the size a subscriber gets.
    token = newsletter.signer.issue("unsubscribe", 0, SAMPLE_ADDRESS)
    values = {
        "first_name": settings.email.first_name_fallback,
        "unsubscribe_url": unsubscribe_url(settings.web.base_url, token),
    }
    checks.extend(email_checks(issue, values))
    if links:
        html_links = collect(issue.html).links
        checks.extend(
            link_checks(
                link_targets(html_links),
                timeout=settings.preflight.link_timeout,
                total=settings.preflight.links_total_timeout,
            )
        )
        # Fetched like the links (so `--no-links` and `send` skip it too).
        author = newsletter.article(slug).author
        photo = settings.authors[author].photo_url if author in settings.authors else None
        if author and photo:
            checks.append(
                photo_check(
                    author,
                    photo,
                    root=settings.root,
                    timeout=settings.preflight.link_timeout,
                    total=settings.preflight.links_total_timeout,
                )
            )
    return PreflightReport(slug=slug, checks=tuple(checks))
