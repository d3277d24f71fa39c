"""Commands that keep running: ``serve`` (the web app), ``demo`` (what ``make run``
does: sample subscribers, the sample issue to the outbox, then scheduler and web)
and ``worker`` (sends batches of every campaign with rows pending).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

import typer

from pipeline.cli.app import _state, app, err, out
from pipeline.config import BASE_URL_ENV, Settings, find_config, load_settings
from pipeline.links import archive_index_url
from pipeline.newsletter import Newsletter
from pipeline.sending.welcome import prepare_welcome, send_welcomes
from pipeline.settings_check import check_services
from pipeline.subscribers import import_csv

# -- services -------------------------------------------------------------------


def _checked(ctx: typer.Context, served: tuple[str, int] | None = None) -> Newsletter:
    """The Newsletter, after every setting the service uses was checked (see `check`).

    ``served``: the web app's host and port (see :func:`served_settings`).
    """
    config = find_config(_state(ctx).config)
    settings = load_settings(config)
    check_services(settings, config)
    return Newsletter(settings if served is None else served_settings(settings, *served))


#: The issue `make run` sends: part 2 of the sample series, so both links show.
DEMO_SLUG = "hip-pain-massage-therapy"


def _serve(newsletter: Newsletter, host: str, port: int) -> None:
    import uvicorn

    from pipeline.web.app import create_app
    from pipeline.web.server import server_config

    # Limits, timeouts and proxy trust: see pipeline/web/server.py and the README.
    uvicorn.Server(server_config(create_app(newsletter), newsletter.settings, host, port)).run()


#: Host names that mean "this machine only": a ``base_url`` on one of them is the sample's
#: (or a local try-out's), reached on whatever port the server really listens on.
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
#: ``--host`` values that listen on every address (the link keeps base_url's host name).
_EVERY_ADDRESS = frozenset({"0.0.0.0", "::", ""})


def served_base_url(base_url: str, host: str, port: int) -> str:
    """The base URL this process links to, so that its links open the server just started.

    The sample's ``[web] base_url`` is ``http://127.0.0.1:8000``: run on another
    port (``--port``, a second ``make run``) and a setup link built from it opens
    nothing, or another folder's server. A loopback base_url therefore takes the
    served host and port; a public one (a proxy in front) is kept as it is, since
    there the server's own address is not what a browser reaches. The scheduler's
    jobs read the file again at every run: ``demo`` hands them the moved URL in
    ``NEWSLETTER_BASE_URL`` (:func:`jobs_link_here`).
    """
    parts = urlsplit(base_url)
    if parts.hostname not in _LOOPBACK:
        return base_url
    name = parts.hostname if host in _EVERY_ADDRESS else host
    if ":" in name:  # an IPv6 address, bracketed in a URL
        name = f"[{name}]"
    # Plain http: `serve` and `demo` listen without TLS (a https base_url is a proxy's).
    return f"http://{name}:{port}{parts.path.rstrip('/')}"


def served_settings(settings: Settings, host: str, port: int) -> Settings:
    """``settings`` with a loopback ``base_url`` moved to where this process serves.

    Every link this process prints or sends, and the origin its forms' CSRF
    check expects, then match the running server: a setup link alone would
    open, but its form's post would be refused as coming from another origin.
    """
    base = served_base_url(settings.web.base_url, host, port)
    if base == settings.web.base_url:
        return settings
    return settings.model_copy(update={"web": settings.web.model_copy(update={"base_url": base})})


@contextlib.contextmanager
def jobs_link_here(base_url: str) -> Iterator[None]:
    """``NEWSLETTER_BASE_URL`` set to ``base_url`` while the body runs, then as it was.

    The scheduler's jobs load the settings file again at every run, so without
    this the welcome and scheduled emails of ``demo --port 8001`` would link to
    the file's port 8000: another server, or none.
    """
    before = os.environ.get(BASE_URL_ENV)
    os.environ[BASE_URL_ENV] = base_url
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(BASE_URL_ENV, None)
        else:
            os.environ[BASE_URL_ENV] = before


def setup_link_notice(newsletter: Newsletter) -> str | None:
    """While no dashboard account exists: the line with a one-time link that creates the owner."""
    from pipeline.accounts import SetupLinks
    from pipeline.links import admin_setup_url
    from pipeline.store.users import count_users

    if count_users(newsletter.sessions) > 0:
        return None
    settings = newsletter.settings
    token = SetupLinks(settings.secret_key.get_secret_value(), newsletter.clock).issue()
    url = admin_setup_url(settings.web.base_url, token)
    return f"No dashboard account yet. Create the owner's (link works once, for an hour): {url}"


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port")] = 8000,
) -> None:
    """Run the web app (archive, unsubscribe) until Ctrl-C."""
    newsletter = _checked(ctx, (host, port))
    out.print(f"Serving on {archive_index_url(f'http://{host}:{port}')} (Ctrl-C to stop)")
    if (notice := setup_link_notice(newsletter)) is not None:
        out.print(notice, markup=False, highlight=False, soft_wrap=True)
    _serve(newsletter, host, port)


@app.command()
def demo(
    ctx: typer.Context,
    slug: Annotated[str, typer.Argument(help="Issue to send.")] = DEMO_SLUG,
    subscribers_file: Annotated[
        Path, typer.Option("--subscribers", help="Sample subscribers CSV.")
    ] = Path("sample-subscribers.csv"),
    keep_running: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Keep scheduler and web running.")
    ] = True,
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port")] = 8000,
) -> None:
    """What `make run` does: sample subscribers, the sample issue to the outbox, then serve."""
    from pipeline.schedule.service import SchedulerService

    config = find_config(_state(ctx).config).resolve()
    newsletter = Newsletter(served_settings(load_settings(config), host, port))
    csv_path = (
        subscribers_file if subscribers_file.is_absolute() else config.parent / subscribers_file
    )
    report = import_csv(
        newsletter.sessions,
        csv_path,
        source="sample",
        secret_key=newsletter.settings.secret_key.get_secret_value(),
        welcome=prepare_welcome(newsletter),
    )
    for problem in report.problems:
        print(problem, file=sys.stderr)
    out.print(
        f"Subscribers: {report.added} added, {report.unchanged + report.updated} already there"
    )
    # The sample subscribers' welcome emails go to the outbox too (quietly: the
    # demo's output is about the sample issue).
    send_welcomes(newsletter)
    result = newsletter.send(slug)
    c = result.counts
    folder = newsletter.settings.outbox_path / slug
    verb = "Sent" if result.created else "Already sent earlier (nothing sent twice):"
    out.print(f"{verb} '{c.slug}': {c.sent} sent, {c.suppressed} suppressed, {c.failed} failed")
    out.print(f"Emails are in {folder}/", markup=False, highlight=False)
    if (notice := setup_link_notice(newsletter)) is not None:
        out.print(notice, markup=False, highlight=False, soft_wrap=True)
    if not keep_running:
        return
    with jobs_link_here(newsletter.settings.web.base_url):
        scheduler = SchedulerService(newsletter.settings, config)
        scheduler.start()
        archive = archive_index_url(f"http://{host}:{port}")
        out.print(f"Scheduler running; web archive at {archive} (Ctrl-C to stop)")
        try:
            _serve(newsletter, host, port)
        finally:
            scheduler.stop()


@app.command()
def worker(
    ctx: typer.Context,
    once: Annotated[
        bool, typer.Option("--once", help="One pass over open campaigns, then exit.")
    ] = False,
    poll: Annotated[float, typer.Option("--poll", help="Seconds between idle checks.")] = 5.0,
) -> None:
    """Send batches of every campaign with rows pending (run several, on several machines)."""
    from pipeline.sending.worker import Worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    the_worker = Worker(_checked(ctx), poll_seconds=poll)

    def graceful_stop(signum: int, _frame: object) -> None:
        if the_worker.stopping:
            raise KeyboardInterrupt
        err.print("worker stopping after the batch in hand")
        the_worker.request_stop()

    signal.signal(signal.SIGTERM, graceful_stop)
    signal.signal(signal.SIGINT, graceful_stop)
    if once:
        done = the_worker.run_once()
        if done.stopped:
            print(f"worker: {done.stopped}", file=sys.stderr)
            raise typer.Exit(1)
        return
    the_worker.run_forever()
