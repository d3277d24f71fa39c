"""``/admin``: the queue in send order, with each article's problems beside it; and the
owner's pause/resume of the schedule (``/admin/schedule/pause`` and ``/resume``).

The order and the planned dates are :meth:`pipeline.newsletter.Newsletter.queue`
(so the page says exactly what the scheduler will do); the problems are what
``newsletter check`` reports, by the article file they concern. Owners also see
the subscriber counts by state.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from pipeline.accounts import Role
from pipeline.cli.content import collect_problems
from pipeline.cli.schedule import resume_schedule
from pipeline.errors import Problem
from pipeline.store.scheduler_state import SchedulerStateStore
from pipeline.store.subscribers import count_by_status
from pipeline.web.admin.auth import safe_next
from pipeline.web.admin.kit import AdminKit

FormField = Annotated[str, Form()]


def _problems_by_article(
    problems: list[Problem], articles_dir: Any
) -> tuple[dict[str, list[str]], list[str]]:
    """``check``'s problems keyed by article slug (file stem); the rest (templates) apart."""
    by_slug: dict[str, list[str]] = defaultdict(list)
    general: list[str] = []
    for problem in problems:
        if problem.path.parent == articles_dir:
            by_slug[problem.path.stem].append(f"line {problem.line}: {problem.message}")
        else:
            general.append(f"{problem.path.name}:{problem.line}: {problem.message}")
    return by_slug, general


def queue_routes(kit: AdminKit) -> APIRouter:
    """The dashboard's first page and the schedule's pause switch."""
    router = APIRouter()
    newsletter = kit.ctx.newsletter
    settings = kit.ctx.settings

    @router.get("/admin")
    def dashboard(request: Request) -> HTMLResponse:
        session = kit.auth.require(request)
        tz = settings.schedule.tz
        _count, problems = collect_problems(settings)
        by_slug, general = _problems_by_article(problems, settings.articles_path)
        queue = [
            {
                "slug": e.slug,
                "title": e.title,
                "series": e.series,
                "part": e.part,
                "status": e.status,
                "planned": (
                    e.planned_at.astimezone(tz).strftime("%a %d %b %Y, %H:%M")
                    if e.planned_at
                    else None
                ),
                "problems": by_slug.pop(e.slug, []),
            }
            for e in newsletter.queue()
        ]
        drafts = [
            {"slug": a.slug, "title": a.title, "problems": by_slug.pop(a.slug, [])}
            for a in newsletter.articles().articles
            if a.status == "draft"
        ]
        # Files that could not be read as articles (and sent articles with problems).
        broken = [{"slug": slug, "problems": found} for slug, found in sorted(by_slug.items())]
        extra: dict[str, Any] = {}
        if session.is_owner:
            counts = count_by_status(newsletter.sessions)
            extra["subscriber_counts"] = [(status.value, n) for status, n in counts.items()]
        return kit.page(
            request,
            "queue.html",
            session,
            page_title="Queue",
            section="queue",
            queue=queue,
            drafts=drafts,
            broken=broken,
            general_problems=general,
            timezone=settings.schedule.timezone,
            paused=SchedulerStateStore(newsletter.sessions).status().paused,
            **extra,
        )

    def set_paused(request: Request, csrf_token: str, paused: bool, back: str) -> Response:
        session = kit.auth.require(request, Role.OWNER)
        if not kit.ctx.csrf.check(request, csrf_token):
            return kit.csrf_refused(request, session)
        if paused:
            SchedulerStateStore(newsletter.sessions).set_paused(True, kit.ctx.clock())
        else:  # as `schedule resume`: held firings and owner waits are released too
            resume_schedule(newsletter)
        # Back to the page the button was on (the queue, or the Schedule page).
        return kit.redirect(safe_next(back), session)

    @router.post("/admin/schedule/pause")
    def pause(request: Request, csrf_token: FormField = "", back: FormField = "") -> Response:
        return set_paused(request, csrf_token, True, back)

    @router.post("/admin/schedule/resume")
    def resume(request: Request, csrf_token: FormField = "", back: FormField = "") -> Response:
        return set_paused(request, csrf_token, False, back)

    return router
