"""Write, preview and test: ``/admin/articles/...`` (writers and owners).

- ``new`` and ``SLUG/edit``: the article's front matter as form fields and its
  body as Markdown; saving writes ``articles/SLUG.md`` through
  :mod:`pipeline.content.editing` (only what changed; atomic; refused when the
  file changed since the form was opened) after :mod:`.editor` found none of the
  problems ``newsletter check`` would print. Problems are shown next to their
  field and nothing is written.
- ``preview`` (POST): the form's content rendered as the email without saving.
  The saved article's page (:mod:`.article_preview`) shows the same frames at 375 and
  1280 px, light and dark, and the text part. Pages run no script (the
  site's Content-Security-Policy allows none), so the preview updates on the
  Preview button.
- ``SLUG/preview`` (GET) and ``SLUG/test-send``: :mod:`.article_preview`.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup

from pipeline.content.articles import SLUG_PATTERN
from pipeline.content.editing import (
    ArticleExists,
    ArticleFile,
    ArticleForm,
    StaleVersion,
    edited_text,
    new_article_text,
    read_for_editing,
    save_article,
)
from pipeline.content.reserved import reserved_reason
from pipeline.errors import Problem
from pipeline.web.admin.article_preview import saved_preview_routes
from pipeline.web.admin.auth import AdminSession
from pipeline.web.admin.editor import check_text, email_preview, field_of
from pipeline.web.admin.kit import AdminKit
from pipeline.web.admin.live_preview import EDITOR_PAGE_POLICY, LIVE_PREVIEW_SCRIPT

FormField = Annotated[str, Form()]

STALE_MESSAGE = (
    "Someone saved this article after you opened it, so your changes were not saved."
    " They are still in the form below: copy what you need, then open the saved version"
    " and make them again."
)


def article_form(
    title: FormField = "",
    series: FormField = "",
    part: FormField = "",
    summary: FormField = "",
    author: FormField = "",
    image: FormField = "",
    send_date: FormField = "",
    send_time: FormField = "",
    status: FormField = "queued",
    body: FormField = "",
) -> ArticleForm:
    """The posted form's fields."""
    return ArticleForm(
        title=title,
        series=series,
        part=part,
        summary=summary,
        author=author,
        image=image,
        send_date=send_date,
        send_time=send_time,
        status=status,
        body=body,
    )


PostedForm = Annotated[ArticleForm, Depends(article_form)]


def slug_from_title(title: str) -> str:
    """A file name for a new article when the writer left it empty: hip-pain-relief."""
    plain = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "-", plain.lower()).strip("-")[:80].strip("-")


def article_routes(kit: AdminKit) -> APIRouter:
    """Write, preview and test."""
    router = APIRouter()
    newsletter = kit.ctx.newsletter
    settings = kit.ctx.settings
    tz = settings.schedule.tz

    def file_for(slug: str) -> Path | None:
        """The file of the article with this slug (or file name, for a file with problems)."""
        if not SLUG_PATTERN.fullmatch(slug):
            return None
        for article in newsletter.articles().articles:
            if article.slug == slug:
                return article.path
        path = settings.articles_path / f"{slug}.md"
        return path if path.is_file() else None

    def editor(
        request: Request,
        session: AdminSession,
        form: ArticleForm,
        *,
        slug: str | None,
        version: str = "",
        new_slug: str = "",
        status_code: int = 200,
        problems: tuple[Problem, ...] = (),
        text: str = "",
        **extra: Any,
    ) -> HTMLResponse:
        by_field: dict[str, list[str]] = defaultdict(list)
        for problem in problems:
            by_field[field_of(text, problem)].append(f"line {problem.line}: {problem.message}")
        authors = list(settings.authors)
        if form.author and form.author not in authors:
            authors.append(form.author)  # kept, so saving does not drop it
        base = f"/admin/articles/{slug}" if slug else "/admin/articles"
        extra = {"notice": None, "stale": False, "slug_problem": None, "preview": None, **extra}
        response = kit.page(
            request,
            "article_edit.html",
            session,
            status_code=status_code,
            page_title=f"Edit {form.title or slug}" if slug else "New article",
            section="write" if slug is None else "queue",
            slug=slug,
            new_slug=new_slug,
            fields=form,  # not "form": the page's own flag for a CSRF token
            version=version,
            authors=authors,
            problems=[str(p) for p in problems],
            by_field=dict(by_field),
            save_url=f"{base}/edit" if slug else "/admin/articles/new",
            preview_url=f"{base}/preview",
            timezone=settings.schedule.timezone,
            # Our own constant, never anything typed (see pipeline.web.admin.live_preview).
            live_script=Markup(LIVE_PREVIEW_SCRIPT),
            **extra,
        )
        response.headers["Content-Security-Policy"] = EDITOR_PAGE_POLICY
        return response

    def refused(request: Request, csrf_token: str) -> tuple[AdminSession, Response | None]:
        session = kit.auth.require(request)
        if not kit.ctx.csrf.check(request, csrf_token):
            return session, kit.csrf_refused(request, session)
        return session, None

    def new_file_problem(slug: str) -> str | None:
        if not slug:
            return "give the article a file name (lowercase letters, digits and hyphens)"
        if not SLUG_PATTERN.fullmatch(slug):
            return f"the file name must be lowercase letters, digits and hyphens, not {slug!r}"
        if (reason := reserved_reason(slug)) is not None:
            return reason
        if file_for(slug) is not None:
            return f"an article called {slug!r} already exists: choose another file name"
        return None

    def unreadable(request: Request, session: AdminSession, problems: list[Problem]) -> Response:
        return kit.page(
            request,
            "message.html",
            session,
            status_code=409,
            page_title="This article cannot be edited here",
            message="Its front matter cannot be read: "
            + "; ".join(str(p) for p in problems)
            + ". Fix it in a text editor (newsletter check shows the same problems).",
            link="/admin",
            link_text="Back to the queue",
        )

    # -- new ---------------------------------------------------------------------------

    @router.get("/admin/articles/new")
    def new_form(request: Request) -> HTMLResponse:
        session = kit.auth.require(request)
        return editor(request, session, ArticleForm(), slug=None)

    @router.post("/admin/articles/new")
    def create(
        request: Request, form: PostedForm, csrf_token: FormField = "", slug: FormField = ""
    ) -> Response:
        session, refusal = refused(request, csrf_token)
        if refusal is not None:
            return refusal
        chosen = slug.strip() or slug_from_title(form.title)
        text = new_article_text(form)
        name_problem = new_file_problem(chosen)
        if name_problem is not None:
            return editor(
                request,
                session,
                form,
                slug=None,
                new_slug=slug,
                status_code=422,
                slug_problem=name_problem,
            )
        checked = check_text(settings, f"{chosen}.md", text)
        if checked.problems:
            return editor(
                request,
                session,
                form,
                slug=None,
                new_slug=chosen,
                status_code=422,
                problems=checked.problems,
                text=text,
            )
        try:
            save_article(settings.articles_path / f"{chosen}.md", text, None)
        except ArticleExists:
            return editor(
                request,
                session,
                form,
                slug=None,
                new_slug=chosen,
                status_code=409,
                slug_problem=f"an article called {chosen!r} was just created by someone else:"
                " choose another file name",
            )
        saved = checked.article.slug if checked.article else chosen
        return kit.redirect(f"/admin/articles/{saved}/edit?saved=1", session)

    @router.post("/admin/articles/preview")
    def preview_new(
        request: Request, form: PostedForm, csrf_token: FormField = "", slug: FormField = ""
    ) -> Response:
        session, refusal = refused(request, csrf_token)
        if refusal is not None:
            return refusal
        chosen = slug.strip() or slug_from_title(form.title) or "new-article"
        text = new_article_text(form)
        return preview_of(request, session, form, text, f"{chosen}.md", slug=None, new_slug=slug)

    def preview_of(
        request: Request,
        session: AdminSession,
        form: ArticleForm,
        text: str,
        file_name: str,
        **where: Any,
    ) -> HTMLResponse:
        checked = check_text(settings, file_name, text)
        if checked.problems or checked.article is None:
            return editor(
                request,
                session,
                form,
                status_code=422,
                problems=checked.problems,
                text=text,
                **where,
            )
        issue = newsletter.render_article(checked.article, checked.articles)
        return editor(request, session, form, preview=email_preview(newsletter, issue), **where)

    # -- edit --------------------------------------------------------------------------

    def opened(request: Request, slug: str) -> tuple[AdminSession, ArticleFile | Response]:
        session = kit.auth.require(request)
        path = file_for(slug)
        if path is None:
            return session, kit.ctx.pages.page(
                request,
                "error.html",
                status_code=404,
                private=True,
                title="No such article",
                message=f"There is no article {slug!r} in the articles folder.",
            )
        found = read_for_editing(path)
        if isinstance(found, list):
            return session, unreadable(request, session, found)
        return session, found

    def posted(
        request: Request, slug: str, csrf_token: str
    ) -> tuple[AdminSession, ArticleFile | Response]:
        """A post about an existing article: the CSRF check, then the file (or the refusal)."""
        session, refusal = refused(request, csrf_token)
        if refusal is not None:
            return session, refusal
        return opened(request, slug)

    @router.get("/admin/articles/{slug}/edit")
    def edit_form(request: Request, slug: str, saved: str = "") -> Response:
        session, found = opened(request, slug)
        if not isinstance(found, ArticleFile):
            return found
        notice = f"Saved {settings.articles_dir / found.path.name}." if saved == "1" else None
        return editor(
            request, session, found.form(tz), slug=slug, version=found.version, notice=notice
        )

    @router.post("/admin/articles/{slug}/edit")
    def save(
        request: Request,
        slug: str,
        form: PostedForm,
        csrf_token: FormField = "",
        version: FormField = "",
    ) -> Response:
        session, found = posted(request, slug, csrf_token)
        if not isinstance(found, ArticleFile):
            return found
        if version != found.version:
            return editor(
                request, session, form, slug=slug, version=version, status_code=409, stale=True
            )
        text = edited_text(found, form, tz)
        checked = check_text(settings, found.path.name, text)
        if checked.problems:
            return editor(
                request,
                session,
                form,
                slug=slug,
                version=version,
                status_code=422,
                problems=checked.problems,
                text=text,
            )
        try:
            save_article(found.path, text, version)
        except StaleVersion:
            return editor(
                request, session, form, slug=slug, version=version, status_code=409, stale=True
            )
        return kit.redirect(f"/admin/articles/{slug}/edit?saved=1", session)

    @router.post("/admin/articles/{slug}/preview")
    def preview_edit(
        request: Request,
        slug: str,
        form: PostedForm,
        csrf_token: FormField = "",
        version: FormField = "",
    ) -> Response:
        session, found = posted(request, slug, csrf_token)
        if not isinstance(found, ArticleFile):
            return found
        text = edited_text(found, form, tz)
        return preview_of(request, session, form, text, found.path.name, slug=slug, version=version)

    router.include_router(saved_preview_routes(kit))
    return router
