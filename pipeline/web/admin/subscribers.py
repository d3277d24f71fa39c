"""``/admin/subscribers`` (owners only): counts by state, search, one person's page,
and the two actions on a person, remove (unsubscribe) and forget (erase).

Each action is a GET confirmation page naming the address, then a POST that
carries the address it confirmed: a post without it (or for someone else, say an
id reused after an erasure) changes nothing and is sent to the confirmation
page. Remove and forget are the CLI's own functions
(:func:`~pipeline.subscribers.remove_subscriber`,
:func:`~pipeline.subscribers.forget_subscriber`), so the rules cannot drift.
CSV upload and export live in :mod:`.subscriber_files`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from pipeline.accounts import Role
from pipeline.errors import InvalidAddressError, NotFoundError
from pipeline.store.subscriber_search import (
    SubscriberDetail,
    search_by_address,
    subscriber_detail,
)
from pipeline.store.subscribers import count_by_status
from pipeline.subscribers import forget_subscriber, normalize_email, remove_subscriber
from pipeline.subscribers.profile import subscriber_profile
from pipeline.web.admin.auth import AdminSession
from pipeline.web.admin.kit import AdminKit
from pipeline.web.admin.subscriber_files import file_routes

FormField = Annotated[str, Form()]

#: Search results per page.
PAGE_SIZE = 50
#: Longest search text taken (the longest address the database holds).
MAX_QUERY = 320
#: A page number beyond any list (keeps the offset a 64-bit integer whatever is typed).
MAX_PAGE = 1_000_000

#: What a finished action says on the page it lands on (chosen by key, never echoed).
NOTICES = {
    "removed": "Unsubscribed. The record stays, so no import brings them back.",
    "erased": "The person was erased: nothing in the database names them any more.",
}

#: The two actions on one person: their confirmation page's wording.
ACTIONS: dict[str, dict[str, str]] = {
    "remove": {
        "title": "Unsubscribe {email}?",
        "explain": "They get no more newsletters. Their record stays (marked unsubscribed), "
        "so an import never adds them back; only they can subscribe again, through the "
        "sign-up form.",
        "button": "Unsubscribe {email}",
    },
    "forget": {
        "title": "Erase {email} for good?",
        "explain": "For a privacy request. Their record, consent record and delivery events "
        "are deleted, and their address is removed from everything else; only a keyed "
        "fingerprint stays, so no import or sign-up link brings the address back. This "
        "cannot be undone.",
        "button": "Erase {email}",
    },
}


def when(moment: datetime | None, kit: AdminKit) -> str | None:
    """A stored UTC time in the clinic's timezone, as the dashboard shows times."""
    if moment is None:
        return None
    return moment.astimezone(kit.ctx.settings.schedule.tz).strftime("%a %d %b %Y, %H:%M")


def subscriber_routes(kit: AdminKit) -> APIRouter:
    """The subscribers pages: the list with search, a person, remove and forget."""
    router = APIRouter()
    # First: "/admin/subscribers/import" must not be taken for a person's page.
    router.include_router(file_routes(kit))
    sessions = kit.ctx.newsletter.sessions

    def find(who: str) -> SubscriberDetail | None:
        """``who`` is an id (digits) or an address (anything with an ``@``)."""
        if not who.isprintable():
            return None  # no stored address holds a control character (PostgreSQL refuses NUL)
        if who.isdigit():
            return subscriber_detail(sessions, subscriber_id=int(who))
        try:
            address = normalize_email(who)
        except InvalidAddressError:
            # Stored under older rules: still findable, as `subscribers remove` finds it.
            address = who.strip().lower()
        return subscriber_detail(sessions, email=address)

    def not_found(request: Request, session: AdminSession) -> HTMLResponse:
        return kit.page(
            request,
            "message.html",
            session,
            status_code=404,
            page_title="No such subscriber",
            message="Nobody on the list has that address or number. They may have been erased.",
            link="/admin/subscribers",
            link_text="Back to the subscribers",
            section="subscribers",
        )

    @router.get("/admin/subscribers")
    def subscribers(request: Request, q: str = "", page: int = 1, done: str = "") -> HTMLResponse:
        session = kit.auth.require(request, Role.OWNER)
        counts = count_by_status(sessions)
        # No stored address holds a control character (and PostgreSQL refuses a NUL).
        query = "".join(c for c in q if c.isprintable()).strip()[:MAX_QUERY]
        context: dict[str, Any] = {"query": query, "results": None}
        if query:
            page = min(max(1, page), MAX_PAGE)
            found = search_by_address(
                sessions, query, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE
            )
            pages = max(1, -(-found.total // PAGE_SIZE))
            if page > pages:  # a page past the end (a link kept while people left): the last
                page = pages
                found = search_by_address(
                    sessions, query, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE
                )
            context.update(results=found.rows, total=found.total, page=page, pages=pages)
        return kit.page(
            request,
            "subscribers.html",
            session,
            page_title="Subscribers",
            section="subscribers",
            subscriber_counts=[(status.value, n) for status, n in counts.items()],
            everyone=sum(counts.values()),
            notice=NOTICES.get(done),
            **context,
        )

    @router.get("/admin/subscribers/{who}")
    def person(request: Request, who: str, done: str = "") -> HTMLResponse:
        session = kit.auth.require(request, Role.OWNER)
        found = find(who)
        if found is None:
            return not_found(request, session)
        # What they received and what comes next: the same object `subscribers show` prints.
        profile = subscriber_profile(kit.ctx.newsletter, found.email)
        return kit.page(
            request,
            "subscriber.html",
            session,
            page_title=found.email,
            section="subscribers",
            person=found,
            created=when(found.created_at, kit),
            consented=when(found.consent_at, kit),
            confirm_sent=when(found.confirm_sent_at, kit),
            left=when(found.unsubscribed_at, kit),
            notice=NOTICES.get(done),
            timezone=kit.ctx.settings.schedule.timezone,
            series=profile.series if profile else (),
            other=profile.other if profile else (),
            when=lambda moment: when(moment, kit),
        )

    def confirmation(request: Request, session: AdminSession, who: str, action: str) -> Response:
        found = find(who)
        if found is None:
            return not_found(request, session)
        words = ACTIONS[action]
        return kit.page(
            request,
            "subscriber_confirm.html",
            session,
            page_title=words["title"].format(email=found.email),
            section="subscribers",
            person=found,
            action=action,
            explain=words["explain"],
            button=words["button"].format(email=found.email),
        )

    @router.get("/admin/subscribers/{who}/remove")
    def confirm_remove(request: Request, who: str) -> Response:
        session = kit.auth.require(request, Role.OWNER)
        return confirmation(request, session, who, "remove")

    @router.get("/admin/subscribers/{who}/forget")
    def confirm_forget(request: Request, who: str) -> Response:
        session = kit.auth.require(request, Role.OWNER)
        return confirmation(request, session, who, "forget")

    def confirmed(
        request: Request, who: str, action: str, csrf_token: str, email: str
    ) -> tuple[AdminSession, SubscriberDetail | None, Response | None]:
        """The checks every action post makes first; a response when it must stop there."""
        session = kit.auth.require(request, Role.OWNER)
        if not kit.ctx.csrf.check(request, csrf_token):
            return session, None, kit.csrf_refused(request, session)
        found = find(who)
        if found is None:
            return session, None, not_found(request, session)
        if email != found.email:
            # Not from the confirmation page of this very person: ask there.
            return session, None, kit.redirect(f"/admin/subscribers/{found.id}/{action}", session)
        return session, found, None

    @router.post("/admin/subscribers/{who}/remove")
    def remove(
        request: Request, who: str, csrf_token: FormField = "", email: FormField = ""
    ) -> Response:
        session, found, stop = confirmed(request, who, "remove", csrf_token, email)
        if stop is not None or found is None:
            return stop or not_found(request, session)
        try:
            remove_subscriber(sessions, found.email)
        except NotFoundError:  # erased by someone else since the page was shown
            return not_found(request, session)
        return kit.redirect(f"/admin/subscribers/{found.id}?done=removed", session)

    @router.post("/admin/subscribers/{who}/forget")
    def forget(
        request: Request, who: str, csrf_token: FormField = "", email: FormField = ""
    ) -> Response:
        session, found, stop = confirmed(request, who, "forget", csrf_token, email)
        if stop is not None or found is None:
            return stop or not_found(request, session)
        report = forget_subscriber(
            sessions, found.email, secret_key=kit.ctx.settings.secret_key.get_secret_value()
        )
        if report.residue is not None:
            # The same case as the CLI's exit 1: the rows are gone, some bytes may not be.
            return kit.page(
                request,
                "message.html",
                session,
                page_title="Erased, with one thing left to do",
                message=f"Their rows are gone, but {report.residue}. Run "
                f"`newsletter subscribers forget {found.email}` when nothing else is using "
                "the database to finish.",
                link="/admin/subscribers",
                link_text="Back to the subscribers",
                section="subscribers",
            )
        return kit.redirect("/admin/subscribers?done=erased", session)

    return router
