"""``/admin/send/{slug}`` (owners only): "send now", behind a page that names the audience.

The GET is the confirmation: "Send 'Title' to 1,234 people?", with the
preflight's findings (a failure blocks the send, as it does for
``newsletter send`` and a scheduled firing). The POST checks again, plans the
campaign (so the campaign page has its rows at once), starts the send in a
thread (:mod:`.background`) and redirects to the campaign page, where the
counts move. A campaign already started is resumed, never restarted: its
confirmation names the people still waiting for it; a finished one is not
sent again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from pipeline.accounts import Role
from pipeline.errors import NotFoundError, PipelineError
from pipeline.preflight import run_preflight
from pipeline.store.dashboard import audience_size
from pipeline.web.admin.auth import AdminSession
from pipeline.web.admin.background import BackgroundSends, SendRequest
from pipeline.web.admin.kit import AdminKit

FormField = Annotated[str, Form()]


@dataclass(frozen=True)
class SendPlanView:
    """What the confirmation says about one article."""

    slug: str
    title: str
    #: People this send would mail (the campaign's rows still pending when resuming).
    audience: int
    resuming: bool
    #: Why it cannot be sent (a draft, already sent, no one to send to); None: it can.
    refused: str | None = None
    failures: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


def campaign_path(slug: str) -> str:
    """The campaign page of ``slug``."""
    return f"/admin/campaigns/{quote(slug, safe='')}"


def send_now_routes(kit: AdminKit, sends: BackgroundSends) -> APIRouter:
    """The confirmation page and the post that starts the send."""
    router = APIRouter()
    newsletter = kit.ctx.newsletter

    def plan_view(slug: str) -> SendPlanView:
        article = newsletter.article(slug)  # NotFoundError: a 404 page
        campaign = newsletter.ledger.get_campaign(slug)
        if campaign is not None:
            counts = newsletter.ledger.counts(campaign)
            waiting = counts.pending
            refused = (
                None
                if waiting
                else "It has been sent: every person it was planned for has a result. "
                "Nothing is ever sent twice."
            )
            return SendPlanView(slug, campaign.issue.subject, waiting, True, refused)
        if article.status == "draft":
            return SendPlanView(
                slug, article.title, 0, False, "It is a draft: queue it before sending it."
            )
        audience = audience_size(newsletter.sessions, newsletter.live_keep(slug))
        # Links never block a send (as for `newsletter send`): only the rest is checked here.
        report = run_preflight(newsletter, slug, links=False)
        refused = None if audience else "No active subscriber would get it."
        return SendPlanView(
            slug,
            article.title,
            audience,
            False,
            refused,
            failures=tuple(c.line() for c in report.failures),
            warnings=tuple(c.line() for c in report.warnings),
        )

    def confirmation(
        request: Request, session: AdminSession, view: SendPlanView, status_code: int = 200
    ) -> HTMLResponse:
        people = f"{view.audience:,} {'person' if view.audience == 1 else 'people'}"
        if view.refused:
            heading = f"'{view.title}' can't be sent now"
        elif view.resuming:
            heading = f"Resume sending '{view.title}' to the {people} still waiting for it?"
        else:
            heading = f"Send '{view.title}' to {people}?"
        return kit.page(
            request,
            "send_confirm.html",
            session,
            status_code=status_code,
            page_title=heading,
            section="schedule",
            heading=heading,
            view=view,
            blocked=bool(view.refused or view.failures),
            action=f"/admin/send/{quote(view.slug, safe='')}",
            button="Yes, resume sending" if view.resuming else f"Yes, send it to {people}",
            cancel="/admin/schedule",
            warning=None,
        )

    @router.get("/admin/send/{slug}")
    def confirm(request: Request, slug: str) -> Response:
        session = kit.auth.require(request, Role.OWNER)
        try:
            view = plan_view(slug)
        except NotFoundError:
            return kit.ctx.pages.page(request, "not_found.html", status_code=404)
        except PipelineError as exc:  # the article's file cannot be read
            view = SendPlanView(slug, slug, 0, False, str(exc))
        return confirmation(request, session, view)

    @router.post("/admin/send/{slug}")
    def send(request: Request, slug: str, csrf_token: FormField = "") -> Response:
        session = kit.auth.require(request, Role.OWNER)
        if not kit.ctx.csrf.check(request, csrf_token):
            return kit.csrf_refused(request, session)
        try:
            view = plan_view(slug)
            if view.refused or view.failures:
                return confirmation(request, session, view, 409)
            newsletter.plan(slug)
        except NotFoundError:
            return kit.ctx.pages.page(request, "not_found.html", status_code=404)
        except PipelineError as exc:
            return confirmation(request, session, SendPlanView(slug, slug, 0, False, str(exc)), 400)
        # Already sending here (a second click): the campaign page shows that send.
        sends.start(SendRequest(slug))
        return kit.redirect(campaign_path(slug), session)

    return router
