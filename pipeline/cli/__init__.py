"""The ``newsletter`` command.

Every user error is one line on stderr (``path:line: message`` for problems in
a file) and exit status 1; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import json
import logging
import shutil
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from pipeline import __version__
from pipeline.cli import status_view
from pipeline.cli.schedule import schedule_app
from pipeline.config import Settings, find_config, load_settings
from pipeline.content.articles import load_articles
from pipeline.content.series import series_nav, series_problems
from pipeline.errors import ConfigError, PipelineError, Problem, TemplateError
from pipeline.newsletter import Newsletter
from pipeline.preflight.command import add_preflight_command
from pipeline.render import render_issue
from pipeline.sending.runner import CampaignRunner
from pipeline.store.ledger import CampaignCounts
from pipeline.store.reports import CampaignReport
from pipeline.store.stops import StopStore
from pipeline.subscribers import (
    add_subscriber,
    export_csv,
    forget_subscriber,
    import_csv,
    iter_subscribers,
    remove_subscriber,
    to_json_dict,
)

DEFAULTS_DIR = Path(__file__).parent.parent / "defaults"

app = typer.Typer(
    help="Turn a clinic's articles into a newsletter: check, queue, preview and send.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
subscribers_app = typer.Typer(help="Manage the subscriber list.", no_args_is_help=True)
app.add_typer(subscribers_app, name="subscribers")
app.add_typer(schedule_app, name="schedule")

out = Console()
err = Console(stderr=True)


@dataclass
class CliState:
    """Options given before the command."""

    config: Path | None = None


def _state(ctx: typer.Context) -> CliState:
    state = ctx.find_root().obj
    assert isinstance(state, CliState)
    return state


def _settings(ctx: typer.Context) -> Settings:
    return load_settings(find_config(_state(ctx).config))


def _open(ctx: typer.Context) -> Newsletter:
    return Newsletter(_settings(ctx))


add_preflight_command(app, _open)


def _table(*headers: str) -> Table:
    # Fold instead of truncating: an address cut to "sam.nguyen@exam…" is useless.
    table = Table()
    for header in headers:
        table.add_column(header, overflow="fold")
    return table


def _print_json(value: Any) -> None:
    # Plain print: rich would wrap long lines and break the JSON.
    print(json.dumps(value, indent=2, ensure_ascii=False))


@app.callback(invoke_without_command=True)
def _root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="Settings file (default: $NEWSLETTER_CONFIG, else ./newsletter.toml).",
        ),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
    version: Annotated[bool, typer.Option("--version", help="Print the version.")] = False,
) -> None:
    if version:
        print(__version__)
        raise typer.Exit()
    if ctx.invoked_subcommand is None:
        print(ctx.get_help())
        raise typer.Exit(2)
    ctx.obj = CliState(config=config)


# -- folder ---------------------------------------------------------------------


@app.command()
def init(directory: Annotated[Path, typer.Argument(help="Folder to create.")]) -> None:
    """Scaffold a new newsletter folder (settings, sample articles, templates)."""
    if (directory / "newsletter.toml").exists():
        raise PipelineError(f"{directory / 'newsletter.toml'}: already exists; nothing changed")
    directory.mkdir(parents=True, exist_ok=True)
    for item in ("newsletter.toml", "sample-subscribers.csv"):
        shutil.copyfile(DEFAULTS_DIR / item, directory / item)
    for folder in ("articles", "templates"):
        shutil.copytree(DEFAULTS_DIR / folder, directory / folder, dirs_exist_ok=True)
    out.print(f"Created a newsletter folder in {directory}")
    out.print(f"Next: edit {directory / 'newsletter.toml'}, then run: newsletter check")


def collect_problems(settings: Settings) -> tuple[int, list[Problem]]:
    """Every problem in the folder's articles and templates; (articles read, problems)."""
    found = load_articles(settings.articles_path, settings.schedule.tz)
    problems = list(found.problems) + series_problems(found.articles)
    base_url = settings.web.base_url
    for article in found.articles:
        nav = series_nav(article, found.articles, sent_slugs=(), base_url=base_url)
        try:
            render_issue(article, nav, settings, archive_url=f"{base_url}/archive/{article.slug}")
        except TemplateError as exc:
            problems.append(Problem(article.path, 1, f"does not render: {exc}"))
            break  # a broken template breaks every article the same way
    return len(found.articles) + len({p.path for p in found.problems}), problems


@app.command()
def check(ctx: typer.Context) -> None:
    """Validate settings, templates and every article; one line per problem."""
    try:
        settings = _settings(ctx)
    except ConfigError as exc:
        err.print(str(exc), markup=False, highlight=False)
        raise typer.Exit(1) from None
    count, problems = collect_problems(settings)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        err.print(f"{count} article files checked, {len(problems)} problem(s)")
        raise typer.Exit(1)
    out.print(f"{count} article files checked, no problems")


@app.command()
def queue(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Articles in send order, with their planned dates."""
    newsletter = _open(ctx)
    entries = newsletter.queue()
    if as_json:
        _print_json([e.as_dict() for e in entries])
        return
    table = _table("slug", "title", "series", "part", "status", "planned")
    for e in entries:
        planned = e.planned_at.isoformat() if e.planned_at else "-"
        table.add_row(e.slug, e.title, e.series or "-", str(e.part or "-"), e.status, planned)
    out.print(table if entries else "The queue is empty.")


@app.command()
def preview(
    ctx: typer.Context,
    slug: Annotated[str, typer.Argument(help="Article slug.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the files.")] = Path("preview"),
) -> None:
    """Write SLUG.html, SLUG.txt and SLUG.eml as a subscriber would get them."""
    files = _open(ctx).preview(slug, out_dir)
    for path in (files.html, files.text, files.eml):
        out.print(str(path), markup=False, highlight=False)


# -- sending --------------------------------------------------------------------


def _preflight_gate(newsletter: Newsletter, slug: str | None) -> None:
    """Refuse to start a campaign that preflight fails (a started one resumes as it is)."""
    from pipeline.preflight import run_preflight
    from pipeline.preflight.command import print_problems

    slug = newsletter.resolve_slug(slug)
    if newsletter.ledger.get_campaign(slug) is not None:
        return  # already vetted when it started: a resume must not be held up
    # Links never block a send: `newsletter preflight` checks them.
    report = run_preflight(newsletter, slug, links=False)
    print_problems(report)
    if not report.ok:
        raise PipelineError(
            f"{slug}: not sent: {len(report.failures)} preflight failure(s) above; fix them "
            "(see `newsletter preflight`) or send with --skip-preflight"
        )


def _counts_table(rows: list[CampaignCounts]) -> Table:
    return status_view.counts_table(rows)


def _details(lines: list[str]) -> None:
    # Plain prints: one line each, never wrapped, for people and scripts alike.
    for line in lines:
        print(line, file=sys.stderr)


@app.command()
def send(
    ctx: typer.Context,
    slug: Annotated[str | None, typer.Argument(help="Article slug (default: next due).")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Really send (required).")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Render and count; send nothing.")
    ] = False,
    include_new: Annotated[
        bool, typer.Option("--include-new", help="Also send to those who joined since.")
    ] = False,
    resend_uncertain: Annotated[
        bool,
        typer.Option(
            "--resend-uncertain",
            help="Send again to rows in doubt after a crash (a duplicate rather than a miss).",
        ),
    ] = False,
    retry_failed: Annotated[
        bool,
        typer.Option(
            "--retry-failed",
            help="Send again to rows that failed for a reason that may be fixed now (a request "
            "refused with 400/413, retries run out); never to addresses refused for the person.",
        ),
    ] = False,
    plan_only: Annotated[
        bool,
        typer.Option("--plan-only", help="Plan the campaign; leave sending to `worker`."),
    ] = False,
    skip_preflight: Annotated[
        bool,
        typer.Option("--skip-preflight", help="Send even if `newsletter preflight` fails."),
    ] = False,
) -> None:
    """Send an article to every active subscriber; a repeat resumes, never resends."""
    if not (yes or dry_run):
        raise PipelineError("send needs --yes to send (or --dry-run to count only)")
    newsletter = _open(ctx)
    if not (dry_run or skip_preflight):
        _preflight_gate(newsletter, slug)
    if plan_only and not dry_run:
        campaign, created = newsletter.plan(newsletter.resolve_slug(slug))
        counts = newsletter.ledger.counts(campaign)
        verb = "planned" if created else "already planned"
        out.print(f"{campaign.slug}: {verb} for {counts.planned} subscriber(s); workers send it")
        return
    runners: list[CampaignRunner] = []

    def graceful_stop(signum: int, _frame: object) -> None:
        if not runners or runners[0].stopping:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now
        err.print("stopping after the batch in hand (Ctrl-C again to stop at once)")
        runners[0].request_stop()

    signal.signal(signal.SIGTERM, graceful_stop)
    signal.signal(signal.SIGINT, graceful_stop)
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:.0f} recipients/s"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task("sending", total=None, rate=0.0)

        def progress(counts: CampaignCounts) -> None:
            done = counts.planned - counts.pending - counts.sending
            elapsed = bar.tasks[0].elapsed or 0.0
            rate = done / elapsed if elapsed else 0.0
            so_far = (
                f"sent {counts.sent} · failed {counts.failed} · uncertain {counts.uncertain}"
                f" · suppressed {counts.suppressed}"
            )
            bar.update(task, total=counts.planned, completed=done, rate=rate, description=so_far)

        report = newsletter.send(
            slug,
            dry_run=dry_run,
            include_new=include_new,
            resend_uncertain=resend_uncertain,
            retry_failed=retry_failed,
            progress=progress,
            on_runner=runners.append,
        )
    c = report.counts
    if report.dry_run:
        out.print(f"dry run: {c.slug} would go to {c.pending} subscriber(s); nothing sent")
        return
    out.print(_counts_table([c]))
    if report.added:
        out.print(f"{report.added} new subscriber(s) added to the campaign")
    if report.requeued:
        out.print(f"{report.requeued} uncertain row(s) sent again")
    if report.retried:
        out.print(f"{report.retried} failed row(s) sent again")
    failures = newsletter.reports(c.slug)[0].failures if c.failed or c.uncertain else ()
    _details(status_view.failure_lines(c.slug, failures))
    # Plain prints: one line each, never wrapped, for people and scripts alike.
    if c.sending:
        print(f"{c.slug}: {c.sending} message(s) in flight from another sender", file=sys.stderr)
    if report.stopped:
        print(f"{c.slug}: {report.stopped}", file=sys.stderr)
    if report.stop is not None:
        print(report.stop.describe(newsletter.settings.schedule.tz), file=sys.stderr)
    if not report.complete:
        print(
            f"{c.slug}: not everything was delivered: {c.failed} failed, "
            f"{c.uncertain} uncertain, {c.pending} not sent yet"
            + (
                " (see `newsletter status`; --resend-uncertain resends those in doubt)"
                if c.uncertain
                else ""
            ),
            file=sys.stderr,
        )
        if retryable := status_view.retryable(failures):
            print(
                f"{c.slug}: --retry-failed sends the {retryable} failed row(s) again "
                "whose cause may be fixed",
                file=sys.stderr,
            )
        raise typer.Exit(1)


@app.command("test-send")
def test_send(
    ctx: typer.Context,
    slug: Annotated[str, typer.Argument(help="Article slug.")],
    to: Annotated[str, typer.Option("--to", help="Address for the one copy.")],
) -> None:
    """Send one copy to an address, outside the ledger."""
    message_id = _open(ctx).test_send(slug, to)
    out.print(f"sent one copy of {slug} to {to} ({message_id})", markup=False, highlight=False)


@app.command()
def status(
    ctx: typer.Context,
    slug: Annotated[str | None, typer.Argument(help="One campaign (default: all).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Per campaign: the counts by state, why rows failed, who holds rows in flight."""
    newsletter = _open(ctx)
    reports = newsletter.reports(slug)
    rows = [report.counts for report in reports]
    # Why a campaign stopped with rows pending, and whether it waits for a retry or the owner.
    stops = {stop.slug: stop for stop in StopStore(newsletter.sessions).all().values()}
    zone = newsletter.settings.schedule.tz
    if as_json:
        from pipeline.events.sendgrid import event_counts

        def with_events(report: CampaignReport) -> dict[str, Any]:
            # SendGrid webhook counts (delivered, bounced, opened, clicked) beside the ledger's.
            counts = report.counts
            campaign = newsletter.ledger.get_campaign(counts.slug)
            extra = event_counts(newsletter.sessions, campaign.id) if campaign else {}
            stop = stops.get(counts.slug)
            stopped = {"stopped": stop.as_dict(zone) if stop else None}
            return {**report.as_dict(), **extra, **stopped}

        _print_json(with_events(reports[0]) if slug else [with_events(r) for r in reports])
        return
    out.print(_counts_table(rows) if rows else "No campaigns yet.")
    for report in reports:
        if report.counts.slug in stops:
            print(stops[report.counts.slug].describe(zone))
        for line in status_view.detail_lines(report):
            print(line)  # plain: never wrapped, so a slug is never broken


# -- subscribers ----------------------------------------------------------------


@subscribers_app.command("import")
def subscribers_import(
    ctx: typer.Context, file: Annotated[Path, typer.Argument(help="CSV file with an email column.")]
) -> None:
    """Import a CSV; bad rows are reported as FILE:LINE and skipped."""
    newsletter = _open(ctx)
    with Progress(
        TextColumn("[bold]importing"), TextColumn("{task.completed} rows"), console=err
    ) as bar:
        task = bar.add_task("import", total=None)
        report = import_csv(
            newsletter.sessions,
            file,
            progress=lambda rows: bar.update(task, completed=rows),
            secret_key=newsletter.settings.secret_key.get_secret_value(),
        )
    for problem in report.problems:
        print(problem, file=sys.stderr)
    out.print(
        f"{report.added} added, {report.updated} updated, {report.unchanged} unchanged, "
        f"{report.kept_left} left alone (unsubscribed earlier), {len(report.problems)} skipped"
    )
    if report.problems:
        raise typer.Exit(1)


@subscribers_app.command("add")
def subscribers_add(
    ctx: typer.Context,
    email: Annotated[str, typer.Argument()],
    first_name: Annotated[str | None, typer.Option("--first-name")] = None,
    last_name: Annotated[str | None, typer.Option("--last-name")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="Repeatable.")] = None,
) -> None:
    """Add (or update) one active subscriber; never an address erased by `forget`."""
    newsletter = _open(ctx)
    record = add_subscriber(
        newsletter.sessions,
        email,
        first_name=first_name,
        last_name=last_name,
        tags=tuple(tag or ()),
        secret_key=newsletter.settings.secret_key.get_secret_value(),
    )
    out.print(f"{record.email}: {record.status}", markup=False, highlight=False)


@subscribers_app.command("remove")
def subscribers_remove(ctx: typer.Context, email: Annotated[str, typer.Argument()]) -> None:
    """Unsubscribe an address; the record stays so no import revives it."""
    remove_subscriber(_open(ctx).sessions, email)
    out.print(f"{email}: unsubscribed", markup=False, highlight=False)


@subscribers_app.command("forget")
def subscribers_forget(ctx: typer.Context, email: Annotated[str, typer.Argument()]) -> None:
    """Erase a person entirely (privacy request); only a keyed hash of the address stays."""
    newsletter = _open(ctx)
    report = forget_subscriber(
        newsletter.sessions, email, secret_key=newsletter.settings.secret_key.get_secret_value()
    )
    done = "already erased; scrubbed again" if report.already_erased else "erased"
    out.print(f"{email}: {done}", markup=False, highlight=False)
    if report.residue is not None:
        print(
            f"{email}: the rows are gone, but {report.residue}; run this command again "
            "when nothing else is using the database",
            file=sys.stderr,
        )
        raise typer.Exit(1)


@subscribers_app.command("list")
def subscribers_list(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List subscribers."""
    records = iter_subscribers(_open(ctx).sessions)
    if as_json:
        _print_json([to_json_dict(r) for r in records])
        return
    table = _table("email", "first name", "last name", "status", "tags")
    for r in records:
        table.add_row(r.email, r.first_name or "", r.last_name or "", r.status, ";".join(r.tags))
    out.print(table)


@subscribers_app.command("export")
def subscribers_export(ctx: typer.Context) -> None:
    """Write every subscriber as CSV to standard output."""
    export_csv(_open(ctx).sessions, sys.stdout)


# -- feed import ----------------------------------------------------------------


@app.command("import-feed")
def import_feed_command(
    ctx: typer.Context,
    source: Annotated[
        str, typer.Argument(help="The blog's RSS/Atom feed: an http(s) URL or a file.")
    ],
    series: Annotated[str, typer.Option("--series", help="Series slug for the new articles.")],
    status: Annotated[
        str, typer.Option("--status", help="Status of the new articles: queued or draft.")
    ] = "queued",
    since: Annotated[
        str | None,
        typer.Option("--since", help="Only entries published on or after DATE (YYYY-MM-DD)."),
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option("--limit", min=1, help="At most N new articles, oldest first."),
    ] = None,
    update: Annotated[
        bool, typer.Option("--update", help="Rewrite articles changed on the blog, unless sent.")
    ] = False,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.1, help="Seconds to wait for the server.")
    ] = 20.0,
) -> None:
    """Import a blog's RSS or Atom feed into articles/ (a second import adds nothing)."""
    from pipeline.feeds import FeedError, ImportOptions, import_feed, parse_since

    if status not in ("queued", "draft"):
        raise FeedError(f"--status must be queued or draft, not {status!r}")
    newsletter = _open(ctx)
    settings = newsletter.settings
    options = ImportOptions(
        series=series,
        status="draft" if status == "draft" else "queued",
        since=parse_since(since, settings.schedule.tz) if since else None,
        limit=limit,
        update=update,
        timeout=timeout,
    )
    report = import_feed(
        source,
        options,
        articles_dir=settings.articles_path,
        tz=settings.schedule.tz,
        sessions=newsletter.sessions,
        sent_slugs=newsletter.ledger.sent_slugs(),
    )
    for problem in report.problems:
        print(problem, file=sys.stderr)
    if not report.readable and not report.entries:
        raise typer.Exit(1)  # the feed itself could not be read: its line says why
    if report.not_modified:
        print(f"{source}: not modified since the last import (HTTP 304); nothing imported")
        return
    for article in report.added:
        print(f"added    {article.path.name} (part {article.part}): {article.title}")
    for article in report.updated:
        print(f"updated  {article.path.name}: {article.title}")
    for article in report.changed:
        why = "already sent, left as is" if article.sent else "run with --update to rewrite it"
        print(f"changed  {article.path.name} on the blog ({why})")
    counts = [
        f"{len(report.added)} added",
        f"{len(report.updated)} updated",
        f"{len(report.changed)} changed",
        f"{report.unchanged} unchanged",
    ]
    if report.removed:
        counts.append(f"{report.removed} deleted here earlier (not brought back)")
    if report.held_back:
        counts.append(f"{report.held_back} left for later (--since/--limit)")
    if report.problems:
        counts.append(f"{len(report.problems)} problem(s) on stderr")
    print(f"{source}: {report.entries} entries: " + ", ".join(counts))
    if not report.readable:
        raise typer.Exit(1)


# -- services -------------------------------------------------------------------

#: The issue `make run` sends: part 2 of the sample series, so both links show.
DEMO_SLUG = "hip-pain-massage-therapy"


def _serve(newsletter: Newsletter, host: str, port: int) -> None:
    import uvicorn

    from pipeline.web.app import create_app
    from pipeline.web.server import server_config

    # Limits, timeouts and proxy trust: see pipeline/web/server.py and the README.
    uvicorn.Server(server_config(create_app(newsletter), newsletter.settings, host, port)).run()


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port")] = 8000,
) -> None:
    """Run the web app (archive, unsubscribe) until Ctrl-C."""
    out.print(f"Serving on http://{host}:{port}/archive (Ctrl-C to stop)")
    _serve(_open(ctx), host, port)


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
    newsletter = Newsletter(load_settings(config))
    csv_path = (
        subscribers_file if subscribers_file.is_absolute() else config.parent / subscribers_file
    )
    report = import_csv(
        newsletter.sessions,
        csv_path,
        source="sample",
        secret_key=newsletter.settings.secret_key.get_secret_value(),
    )
    for problem in report.problems:
        print(problem, file=sys.stderr)
    out.print(
        f"Subscribers: {report.added} added, {report.unchanged + report.updated} already there"
    )
    result = newsletter.send(slug)
    c = result.counts
    folder = newsletter.settings.outbox_path / slug
    verb = "Sent" if result.created else "Already sent earlier (nothing sent twice):"
    out.print(f"{verb} '{c.slug}': {c.sent} sent, {c.suppressed} suppressed, {c.failed} failed")
    out.print(f"Emails are in {folder}/", markup=False, highlight=False)
    if not keep_running:
        return
    scheduler = SchedulerService(newsletter.settings, config)
    scheduler.start()
    out.print(f"Scheduler running; web archive at http://{host}:{port}/archive (Ctrl-C to stop)")
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
    the_worker = Worker(_open(ctx), poll_seconds=poll)

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


# -- entry point ----------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit status."""
    args = sys.argv[1:] if argv is None else argv
    command = typer.main.get_command(app)
    try:
        # standalone_mode=False: click returns an Exit's code instead of exiting.
        result = command.main(args=args, prog_name="newsletter", standalone_mode=False)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        err.print("interrupted")
        return 130
    except typer.TyperException as exc:
        # Usage errors (typer bundles its own click; these are its exceptions).
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            print(f"error: {exc}", file=sys.stderr)
        return int(getattr(exc, "exit_code", 2))
    except PipelineError as exc:
        if "--debug" in args:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return result if isinstance(result, int) else 0
