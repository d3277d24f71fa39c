"""``/admin/schedule`` (owners only): when things go out, and the owner's levers on it.

The page shows what ``newsletter schedule list`` shows, from the same
function (:func:`pipeline.cli.schedule.schedule_listing`): the recurring
schedule and its next five firings in the clinic's timezone, the pending
one-off sends, the firings held from a heads-up, and whether the schedule is
paused. Its forms do what the commands do, through the same code: a one-off
is set by :func:`pipeline.cli.schedule.add_one_off` (so it refuses what the
command refuses) and cancelled through the one-off store; a held firing is
released; pause and resume are the queue page's posts. Each queued article
links to "send now" (:mod:`.send_now`).
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from pipeline.accounts import Role
from pipeline.cli.schedule import add_one_off, schedule_listing
from pipeline.errors import PipelineError
from pipeline.store.holds import HoldStore
from pipeline.store.oneoffs import OneOffStore
from pipeline.web.admin.auth import AdminSession
from pipeline.web.admin.kit import AdminKit

FormField = Annotated[str, Form()]

#: Recurring firings the page lists (the issue asks for the next five).
FIRINGS_SHOWN = 5


def local_time(moment: datetime, zone: tzinfo) -> dict[str, str]:
    """A moment for a page: words a person reads, and ISO 8601 with its offset for ``<time>``."""
    local = moment.astimezone(zone)
    return {"text": f"{local:%a %d %b %Y, %H:%M}", "iso": local.isoformat()}


def schedule_routes(kit: AdminKit) -> APIRouter:
    """The Schedule page, one-off sends and held firings."""
    router = APIRouter()
    newsletter = kit.ctx.newsletter

    def show(
        request: Request,
        session: AdminSession,
        *,
        status_code: int = 200,
        error: str | None = None,
        form: dict[str, str] | None = None,
    ) -> HTMLResponse:
        zone = newsletter.settings.schedule.tz
        listing = schedule_listing(newsletter, FIRINGS_SHOWN)
        titles = {a.slug: a.title for a in newsletter.articles().articles}
        held = {h.firing_at for h in listing.holds}
        queue = newsletter.queue()
        context: dict[str, Any] = {
            "cron": listing.cron,
            "timezone": listing.timezone,
            "paused": listing.state.paused,
            "paused_at": (
                local_time(listing.state.paused_at, zone) if listing.state.paused_at else None
            ),
            "scheduler_running": listing.scheduler_running,
            "firings": [
                {
                    "at": local_time(f.at, zone),
                    "slug": f.slug,
                    "title": titles.get(f.slug, f.slug) if f.slug else None,
                    "held": f.at in held,
                }
                for f in listing.firings
            ],
            "one_offs": [
                {"slug": o.slug, "title": titles.get(o.slug, o.slug), "at": local_time(o.at, zone)}
                for o in listing.one_offs
            ],
            "holds": [
                {
                    "at": local_time(h.firing_at, zone),
                    "key": h.firing_at.isoformat(),
                    "title": titles.get(h.slug, h.slug) if h.slug else None,
                    "held_at": local_time(h.held_at, zone),
                }
                for h in listing.holds
            ],
            "queue": [
                {
                    "slug": e.slug,
                    "title": e.title,
                    "planned": local_time(e.planned_at, zone) if e.planned_at else None,
                }
                for e in queue
            ],
            "error": error,
            # What the one-off form shows ("form" is the page kit's own flag).
            "entry": form or {"slug": queue[0].slug if queue else "", "at": ""},
        }
        return kit.page(
            request,
            "schedule.html",
            session,
            status_code=status_code,
            page_title="Schedule",
            section="schedule",
            **context,
        )

    @router.get("/admin/schedule")
    def schedule_page(request: Request) -> HTMLResponse:
        return show(request, kit.auth.require(request, Role.OWNER))

    @router.post("/admin/schedule/one-offs")
    def add(
        request: Request, slug: FormField = "", at: FormField = "", csrf_token: FormField = ""
    ) -> Response:
        session = kit.auth.require(request, Role.OWNER)
        if not kit.ctx.csrf.check(request, csrf_token):
            return kit.csrf_refused(request, session)
        form = {"slug": slug, "at": at}
        if not slug or not at.strip():
            return show(
                request,
                session,
                status_code=400,
                error="Choose an article and a date and time for the one-off send.",
                form=form,
            )
        try:
            add_one_off(newsletter, slug, at, label="The time")
        except PipelineError as exc:
            return show(request, session, status_code=400, error=str(exc), form=form)
        return kit.redirect("/admin/schedule", session)

    @router.post("/admin/schedule/one-offs/cancel")
    def cancel(request: Request, slug: FormField = "", csrf_token: FormField = "") -> Response:
        session = kit.auth.require(request, Role.OWNER)
        if not kit.ctx.csrf.check(request, csrf_token):
            return kit.csrf_refused(request, session)
        if not OneOffStore(newsletter.sessions).cancel(slug):
            # Cancelled already, or it fired a moment ago: say so rather than pretend.
            return show(
                request,
                session,
                status_code=409,
                error=f"{slug or 'That article'} has no pending one-off send to remove "
                "(it may have just gone out, or been removed already).",
            )
        return kit.redirect("/admin/schedule", session)

    @router.post("/admin/schedule/holds/release")
    def release(
        request: Request, firing_at: FormField = "", csrf_token: FormField = ""
    ) -> Response:
        session = kit.auth.require(request, Role.OWNER)
        if not kit.ctx.csrf.check(request, csrf_token):
            return kit.csrf_refused(request, session)
        try:
            moment = datetime.fromisoformat(firing_at)
        except ValueError:
            moment = None
        if moment is not None and moment.tzinfo is None:
            moment = None  # the form carries the stored, offset-aware time; nothing else
        if moment is None or not HoldStore(newsletter.sessions).release(moment, kit.ctx.clock()):
            return show(
                request,
                session,
                status_code=409,
                error="That firing is not held any more: nothing was changed.",
            )
        return kit.redirect("/admin/schedule", session)

    return router
