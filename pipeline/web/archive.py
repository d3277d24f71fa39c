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

from pipeline.content.series import SeriesLink, series_nav
from pipeline.errors import PipelineError
from pipeline.render import Personalizer, series_title
from pipeline.sending.runner import stored_issue
from pipeline.store.ledger import CampaignRecord
from pipeline.web.context import WebContext

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


@dataclass(frozen=True)
class ArchiveLink:
    """A neighbour in the series, as the archive frame links it."""

    title: str
    url: str
    sent: bool


@dataclass(frozen=True)
class ArchiveNav:
    """The issue's place in its series, for the archive frame."""

    series_title: str
    previous: ArchiveLink | None
    next: ArchiveLink | None


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


def archive_routes(ctx: WebContext) -> APIRouter:
    """``/``, ``/archive``, ``/archive/feed.xml`` and ``/archive/{slug}``."""
    router = APIRouter()
    pages, newsletter, settings = ctx.pages, ctx.newsletter, ctx.settings

    def entries() -> list[IssueEntry]:
        tz = settings.schedule.tz
        return [
            IssueEntry(
                slug=c.slug,
                subject=c.subject,
                summary=c.preheader,
                sent_on=c.created_at.astimezone(tz),
                url=ctx.url(f"/archive/{c.slug}"),
            )
            for c in newsletter.ledger.campaigns()
        ]

    def public_html(campaign: CampaignRecord) -> str:
        # The archive copy: no one's name, and no one's unsubscribe token.
        return Personalizer(stored_issue(campaign)).html(
            {
                "first_name": settings.email.first_name_fallback,
                "unsubscribe_url": ctx.url("/unsubscribe"),
            }
        )

    def nav_for(slug: str) -> ArchiveNav | None:
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

        def link(neighbour: SeriesLink | None) -> ArchiveLink | None:
            if neighbour is None:
                return None
            url = ctx.url(f"/archive/{neighbour.slug}")
            return ArchiveLink(title=neighbour.title, url=url, sent=neighbour.sent)

        return ArchiveNav(
            series_title=series_title(nav.series),
            previous=link(nav.previous),
            next=link(nav.next),
        )

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
        campaign = newsletter.ledger.get_campaign(slug)
        if campaign is not None:
            context = {"subject": campaign.subject, "nav": nav_for(slug)}
            top = pages.render_string("issue_top.html", **context)
            bottom = pages.render_string("issue_bottom.html", **context)
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
        ("link", ctx.url("/archive")),
        ("description", f"Every issue of the {clinic.name} newsletter."),
        ("language", "en"),
    ):
        ET.SubElement(channel, tag).text = text
    ET.SubElement(
        channel,
        f"{{{_ATOM}}}link",
        {"href": ctx.url("/archive/feed.xml"), "rel": "self", "type": "application/rss+xml"},
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
