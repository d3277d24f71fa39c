"""``/admin``: the queue in send order, with each article's problems beside it; and the
owner's pause/resume of the schedule (``/admin/schedule/pause`` and ``/resume``).

The order and the planned dates are :meth:`pipeline.newsletter.Newsletter.queue`
(so the page says exactly what the scheduler will do); the problems are what
``newsletter check`` reports, by the article file they concern. Owners also see
the subscriber counts by state.

Writers and owners reorder the queue there without script: "Move up"/"Move down"
(``/admin/queue/SLUG/move``) write ``send_after`` by the rule of
:mod:`pipeline.content.queue_moves`, and "Move to drafts"/"Queue it"
(``/admin/queue/SLUG/status``) flip ``status:``; both save as the editor does (one
line changed, atomic) and carry the queue's version, so a move posted from a page
whose queue changed meanwhile is refused. The answer returns to the article's row
(``#q-SLUG``, focusable) so a keyboard user carries on where they were.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from pipeline.accounts import Role
from pipeline.cli.content import collect_problems
from pipeline.cli.schedule import resume_schedule
from pipeline.content.articles import Article
from pipeline.content.editing import StaleVersion
from pipeline.content.queue import queue_order
from pipeline.content.queue_moves import (
    MoveRefused,
    apply_move,
    plan_move,
    queue_version,
    write_field,
)
from pipeline.content.series import part_order, series_title
from pipeline.errors import Problem
from pipeline.store.scheduler_state import SchedulerStateStore
from pipeline.store.subscribers import count_by_status
from pipeline.web.admin.auth import AdminSession, safe_next
from pipeline.web.admin.kit import AdminKit

FormField = Annotated[str, Form()]

STALE_QUEUE = (
    "The queue changed since you opened this page (someone saved or moved an article),"
    " so nothing was changed. Here is the queue as it is now: try again."
)


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


def _series_overview(
    articles: tuple[Article, ...], sent: set[str], planned: dict[str, Any]
) -> list[tuple[str, list[dict[str, Any]]]]:
    """Each series with all its parts in part order: sent, queued (with its date) or draft.

    The queue table above is in send order; this is the same queue grouped by
    series, so a writer sees at a glance which part is missing or still a draft.
    """
    by_series: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for article in sorted(articles, key=part_order):
        if article.series is None:
            continue
        state = "sent" if article.slug in sent else article.status
        by_series[article.series].append(
            {
                "slug": article.slug,
                "title": article.title,
                "part": article.part,
                "state": state,
                "planned": planned.get(article.slug),
            }
        )
    return [(series_title(name), rows) for name, rows in sorted(by_series.items())]


def queue_routes(kit: AdminKit) -> APIRouter:
    """The dashboard's first page and the schedule's pause switch."""
    router = APIRouter()
    newsletter = kit.ctx.newsletter
    settings = kit.ctx.settings

    @router.get("/admin")
    def dashboard(request: Request, moved: str = "") -> HTMLResponse:
        session = kit.auth.require(request)
        return queue_page(request, session, done=moved)

    def queue_page(
        request: Request,
        session: AdminSession,
        *,
        done: str = "",
        refusal: str | None = None,
        status_code: int = 200,
    ) -> HTMLResponse:
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
        articles = newsletter.articles().articles
        drafts = [
            {"slug": a.slug, "title": a.title, "problems": by_slug.pop(a.slug, [])}
            for a in articles
            if a.status == "draft"
        ]
        sent = newsletter.ledger.sent_slugs()
        order = queue_version(queue_order(articles, sent))
        done_title = next((a.title for a in articles if a.slug == done), None)
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
            status_code=status_code,
            order=order,
            done_title=done_title,
            refusal=refusal,
            page_title="Queue",
            section="queue",
            queue=queue,
            series=_series_overview(articles, sent, {str(r["slug"]): r["planned"] for r in queue}),
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

    def queued_article(slug: str) -> Article | None:
        return next((a for a in newsletter.articles().articles if a.slug == slug), None)

    @router.post("/admin/queue/{slug}/move")
    def move(
        request: Request,
        slug: str,
        csrf_token: FormField = "",
        direction: FormField = "",
        order: FormField = "",
    ) -> Response:
        session = kit.auth.require(request)  # writers queue articles too
        if not kit.ctx.csrf.check(request, csrf_token):
            return kit.csrf_refused(request, session)
        articles = newsletter.articles().articles
        sent = newsletter.ledger.sent_slugs()
        try:
            if order != queue_version(queue_order(articles, sent)):
                raise MoveRefused(STALE_QUEUE)
            changes = plan_move(
                articles, sent, slug, direction, kit.ctx.clock(), settings.schedule.tz
            )
            apply_move(changes, settings.schedule.tz)
        except (MoveRefused, StaleVersion) as exc:
            message = STALE_QUEUE if isinstance(exc, StaleVersion) else str(exc)
            return queue_page(request, session, refusal=message, status_code=409)
        # Back to the moved article's row, which takes the focus (its id is the anchor).
        return kit.redirect(f"/admin?moved={slug}#q-{slug}", session)

    @router.post("/admin/queue/{slug}/status")
    def set_status(
        request: Request,
        slug: str,
        csrf_token: FormField = "",
        status: FormField = "",
        order: FormField = "",
    ) -> Response:
        session = kit.auth.require(request)
        if not kit.ctx.csrf.check(request, csrf_token):
            return kit.csrf_refused(request, session)
        article = queued_article(slug)
        sent = newsletter.ledger.sent_slugs()
        try:
            if article is None or status not in ("draft", "queued") or slug in sent:
                raise MoveRefused(f"{slug!r} is not a draft or queued article")
            if order != queue_version(queue_order(newsletter.articles().articles, sent)):
                raise MoveRefused(STALE_QUEUE)
            write_field(article.path, settings.schedule.tz, status=status)
        except (MoveRefused, StaleVersion) as exc:
            message = STALE_QUEUE if isinstance(exc, StaleVersion) else str(exc)
            return queue_page(request, session, refusal=message, status_code=409)
        anchor = "q" if status == "queued" else "d"
        return kit.redirect(f"/admin?moved={slug}#{anchor}-{slug}", session)

    return router
