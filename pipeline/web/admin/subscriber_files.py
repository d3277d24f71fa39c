"""CSV in and out of the subscriber list (owners only): ``/admin/subscribers/import``
and ``/admin/subscribers/export.csv``.

The upload is handed to :func:`~pipeline.subscribers.import_csv`, the CLI's own
importer, so the dashboard cannot drift from ``newsletter subscribers import``:
the same rules (nobody who left is reactivated, erased addresses refused) and the
same per-row report, shown as a page. The body is counted while it arrives and
refused past :data:`MAX_UPLOAD_BYTES` (declared or not), before the importer
sees a byte. The export is :func:`~pipeline.subscribers.export_csv`, the CLI's
``subscribers export``, byte for byte.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, TextIO, cast

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from starlette.datastructures import FormData, UploadFile
from starlette.types import Message

from pipeline.accounts import Role
from pipeline.errors import PipelineError
from pipeline.sending.welcome import prepare_welcome
from pipeline.subscribers import CsvError, ImportReport, export_csv, import_csv
from pipeline.web.admin.auth import AdminSession
from pipeline.web.admin.kit import AdminKit

#: The largest upload taken (the whole request body). A list far larger than a
#: clinic's belongs to ``newsletter subscribers import``, which streams any size.
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
#: Rows of the problem report shown on the page; the count says how many in all.
MAX_PROBLEMS_SHOWN = 500
#: Where the import of an upload records the people it adds (their ``source``).
UPLOAD_SOURCE = "dashboard import"

_UNSAFE_NAME = re.compile(r"[^\w.\- ]+")


class UploadTooLargeError(PipelineError, ValueError):
    """The request body is larger than :data:`MAX_UPLOAD_BYTES`."""


async def read_bounded_form(request: Request, limit: int) -> FormData:
    """The posted form, refused with :class:`UploadTooLargeError` past ``limit`` bytes.

    A declared ``Content-Length`` over the limit is refused before reading;
    a body sent without one (chunked) is counted as it arrives, so neither
    way fills the disk with a file that will be refused anyway.
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise UploadTooLargeError(declared)
    received = 0

    async def counting_receive() -> Message:
        nonlocal received
        message = await request.receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise UploadTooLargeError(str(received))
        return message

    return await Request(request.scope, counting_receive).form(max_files=1, max_fields=10)


def display_name(filename: str | None) -> str:
    """The uploaded file's own name, harmless as a file name and in the report."""
    name = _UNSAFE_NAME.sub("_", Path(filename or "").name).strip(" .")[:100]
    return name or "upload.csv"


def file_routes(kit: AdminKit) -> APIRouter:
    """The import form, the upload and its report, and the export."""
    router = APIRouter()
    newsletter = kit.ctx.newsletter

    def welcome_id() -> int | None:
        # As for a web sign-up: a broken welcome template must not stop an
        # import; those added are then simply not welcomed. Enrolled here, sent
        # by the scheduler's welcome pass, never from a request.
        try:
            return prepare_welcome(newsletter)
        except PipelineError:
            return None

    def run_import(upload: IO[bytes], name: str) -> ImportReport | str:
        """The importer's report, or the one line saying why the file cannot be imported."""
        with tempfile.TemporaryDirectory(prefix="newsletter-upload-") as folder:
            path = Path(folder) / name
            with path.open("wb") as copy:
                shutil.copyfileobj(upload, copy)
            try:
                return import_csv(
                    newsletter.sessions,
                    path,
                    source=UPLOAD_SOURCE,
                    secret_key=newsletter.settings.secret_key.get_secret_value(),
                    welcome=welcome_id(),
                )
            except CsvError as error:
                # The importer names the file; the owner knows it by its own name.
                return str(error).replace(str(path), name)

    def form_page(
        request: Request, session: AdminSession, status_code: int = 200, **context: Any
    ) -> HTMLResponse:
        return kit.page(
            request,
            "subscriber_import.html",
            session,
            status_code=status_code,
            page_title="Import subscribers",
            section="subscribers",
            max_mb=MAX_UPLOAD_BYTES // (1024 * 1024),
            **{"error": None, "report": None, "name": None, **context},
        )

    @router.get("/admin/subscribers/import")
    def import_form(request: Request, missing: int = 0) -> HTMLResponse:
        session = kit.auth.require(request, Role.OWNER)
        error = "Choose a CSV file to upload first." if missing else None
        return form_page(request, session, error=error)

    @router.post("/admin/subscribers/import")
    async def upload(request: Request) -> Response:
        session = kit.auth.require(request, Role.OWNER)
        try:
            form = await read_bounded_form(request, MAX_UPLOAD_BYTES)
        except UploadTooLargeError:
            return form_page(
                request,
                session,
                413,
                error=f"That file is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB, the "
                "most the dashboard takes. Split it into smaller files, or import it with "
                "`newsletter subscribers import FILE`. Nothing was imported.",
            )
        try:
            token = form.get("csrf_token")
            if not kit.ctx.csrf.check(request, token if isinstance(token, str) else None):
                return kit.csrf_refused(request, session)
            chosen = form.get("file")
            if not isinstance(chosen, UploadFile) or not chosen.filename:
                return kit.redirect("/admin/subscribers/import?missing=1", session)
            name = display_name(chosen.filename)
            outcome = await run_in_threadpool(run_import, chosen.file, name)
        finally:
            await form.close()
        if isinstance(outcome, str):
            return form_page(request, session, 400, error=outcome, name=name)
        return form_page(
            request,
            session,
            name=name,
            report=outcome,
            problems=outcome.problems[:MAX_PROBLEMS_SHOWN],
        )

    @router.get("/admin/subscribers/export.csv")
    def export(request: Request) -> Response:
        session = kit.auth.require(request, Role.OWNER)
        # Spooled: a clinic's list stays in memory, a huge one goes to a temporary file.
        spool = tempfile.SpooledTemporaryFile(  # noqa: SIM115 (closed by the generator)
            max_size=4 * 1024 * 1024, mode="w+", encoding="utf-8", newline=""
        )
        try:
            # A text file in all but its stub's name: csv.writer only calls write().
            export_csv(newsletter.sessions, cast("TextIO", spool))
            spool.seek(0)
        except BaseException:
            spool.close()
            raise

        def chunks() -> Iterator[str]:
            with spool:
                while chunk := spool.read(64 * 1024):
                    yield chunk

        day = kit.ctx.clock().astimezone(kit.ctx.settings.schedule.tz).date().isoformat()
        response = StreamingResponse(
            chunks(),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="subscribers-{day}.csv"',
                "Cache-Control": "no-store",
                "X-Robots-Tag": "noindex, nofollow",
            },
        )
        kit.auth.start(response, session.user)
        return response

    return router
