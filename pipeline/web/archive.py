"""The web archive: every sent issue, newest first, its RSS feed, and each issue's page.

``/archive/{slug}`` shows an issue exactly as it was sent, with the personal
parts replaced (the fallback first name, the unsubscribe help page instead of
anyone's token), framed by a slim bar and the issue's previous/next in its
series as they stand today. Every link an email can carry resolves: a queued
article shows a "coming soon" page until it is sent, and drafts are 404.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from pipeline import links
from pipeline.content.reserved import WELCOME_SLUG
from pipeline.content.series import SeriesNav, series_nav
from pipeline.errors import PipelineError
from pipeline.render import Personalizer
from pipeline.store.ledger import CampaignRecord
from pipeline.web.context import WebContext
from pipeline.web.pages import Pages

_ATOM = "http://www.w3.org/2005/Atom"
_BODY_OPEN = re.compile(r"<body\b[^>]*>", re.IGNORECASE)
_BODY_CLOSE = re.compile(r"</body\s*>", re.IGNORECASE)


@dataclass(frozen=True)
class IssueEntry:
    """One line of the archive index."""

    slug: str
    subject: str
    summary: str
    sent_on: datetime
    url: str


def splice(document: str, top: str, bottom: str) -> str:
    """Put ``top`` right after ``<body>`` and ``bottom`` right before ``</body>``."""
    opened = _BODY_OPEN.search(document)
    closes = list(_BODY_CLOSE.finditer(document))
    if opened is None or not closes or closes[-1].start() < opened.end():
        return top + document + bottom
    close = closes[-1].start()
    return (
        document[: opened.end()] + top + document[opened.end() : close] + bottom + document[close:]
    )


def issue_frame(pages: Pages, subject: str, nav: SeriesNav | None) -> tuple[str, str]:
    """The bar above and the series card below an archived issue: ``(top, bottom)``.

    ``nav`` is the same :class:`SeriesNav` the email templates receive.
    """
    context = {"subject": subject, "nav": nav}
    top = pages.render_string("issue_top.html", **context)
    bottom = pages.render_string("issue_bottom.html", **context)
    return top, bottom


def archive_routes(ctx: WebContext) -> APIRouter:
    """``/``, ``/archive``, ``/archive/feed.xml`` and ``/archive/{slug}``."""
    router = APIRouter()
    pages, newsletter, settings = ctx.pages, ctx.newsletter, ctx.settings

    def entries() -> list[IssueEntry]:
        tz = settings.schedule.tz
        return [
            IssueEntry(
                slug=c.slug,
                subject=c.issue.subject,
                summary=c.issue.preheader,
                sent_on=c.created_at.astimezone(tz),
                url=links.archive_url(settings.web.base_url, c.slug),
            )
            for c in newsletter.ledger.campaigns()
            if c.slug != WELCOME_SLUG  # a personal greeting, not an issue
        ]

    def public_html(campaign: CampaignRecord) -> str:
        # The archive copy: no one's name, and no one's unsubscribe token.
        return Personalizer(campaign.issue).html(
            {
                "first_name": settings.email.first_name_fallback,
                "unsubscribe_url": links.unsubscribe_page_url(settings.web.base_url),
            }
        )

    def nav_for(slug: str) -> SeriesNav | None:
        # Today's neighbours (the email froze them as they were on the day it went out);
        # they link into the archive so a reader can walk the series here.
        try:
            article = newsletter.article(slug)
        except PipelineError:
            return None  # the article file is gone or broken: the issue still shows
        articles = newsletter.articles().articles
        nav = series_nav(
            article, articles, sent_slugs=newsletter.ledger.sent_slugs(), base_url=ctx.url("")
        )
        if nav is None:
            return None
        base_url = settings.web.base_url
        return nav.relinked(lambda neighbour: links.archive_url(base_url, neighbour.slug))

    @router.get("/", include_in_schema=False)
    def home(request: Request) -> HTMLResponse:
        return archive_index(request)

    @router.get("/archive")
    def archive_index(request: Request) -> HTMLResponse:
        return pages.page(request, "archive.html", issues=entries())

    @router.get("/archive/feed.xml")
    def feed() -> Response:
        return Response(rss_feed(ctx, entries()), media_type="application/rss+xml; charset=utf-8")

    @router.get("/archive/{slug}")
    def archive_issue(request: Request, slug: str) -> HTMLResponse:
        campaign = None if slug == WELCOME_SLUG else newsletter.ledger.get_campaign(slug)
        if campaign is not None:
            top, bottom = issue_frame(pages, campaign.issue.subject, nav_for(slug))
            return HTMLResponse(splice(public_html(campaign), top, bottom))
        try:
            article = newsletter.article(slug)
        except PipelineError:
            article = None
        if article is None or article.status == "draft":
            return pages.page(request, "not_found.html", status_code=404)
        planned = {e.slug: e.planned_at for e in newsletter.queue()}.get(slug)
        if planned is not None:
            planned = planned.astimezone(settings.schedule.tz)
        return pages.page(request, "coming_soon.html", article=article, planned_at=planned)

    return router


def rss_feed(ctx: WebContext, issues: list[IssueEntry]) -> bytes:
    """RSS 2.0 of the archive, newest first (ElementTree escapes every value)."""
    ET.register_namespace("atom", _ATOM)
    clinic = ctx.settings.clinic
    rss = ET.Element("rss", {"version": "2.0"})
    channel = ET.SubElement(rss, "channel")
    for tag, text in (
        ("title", f"{clinic.name} newsletter"),
        ("link", links.archive_index_url(ctx.settings.web.base_url)),
        ("description", f"Every issue of the {clinic.name} newsletter."),
        ("language", "en"),
    ):
        ET.SubElement(channel, tag).text = text
    ET.SubElement(
        channel,
        f"{{{_ATOM}}}link",
        {
            "href": links.archive_feed_url(ctx.settings.web.base_url),
            "rel": "self",
            "type": "application/rss+xml",
        },
    )
    if issues:
        ET.SubElement(channel, "lastBuildDate").text = format_datetime(issues[0].sent_on)
    for issue in issues:
        item = ET.SubElement(channel, "item")
        ET.SubElement(item, "title").text = issue.subject
        ET.SubElement(item, "link").text = issue.url
        ET.SubElement(item, "guid", {"isPermaLink": "true"}).text = issue.url
        ET.SubElement(item, "pubDate").text = format_datetime(issue.sent_on)
        if issue.summary:
            ET.SubElement(item, "description").text = issue.summary
    return bytes(ET.tostring(rss, encoding="utf-8", xml_declaration=True))
