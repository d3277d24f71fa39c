"""Commands about campaigns: ``send`` (with the preflight gate, progress and the
end-of-run report), ``test-send`` (one copy outside the ledger) and ``status``
(counts, failures, stops and webhook events per campaign). ``preflight`` itself is
registered by pipeline/cli/app.py, since the help lists it first.
"""

from __future__ import annotations

import signal
import sys
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from pipeline.cli import status_view
from pipeline.cli.app import _open, _print_json, app, err, out
from pipeline.errors import PipelineError
from pipeline.newsletter import Newsletter
from pipeline.sending.runner import CampaignRunner
from pipeline.store.catch_up import campaign_ids_by_slug, catch_up_counts
from pipeline.store.ledger import CampaignCounts
from pipeline.store.reports import CampaignReport
from pipeline.store.stops import StopStore

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
            # Once, before the first batch: what auto (or the settings) chose.
            on_plan=lambda plan: err.print(plan.describe(), markup=False, highlight=False),
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
    # Catch-up sends are rows of the article's own campaign (counted in the table too).
    by_id = catch_up_counts(newsletter.sessions)
    ids = campaign_ids_by_slug(newsletter.sessions)
    caught_up = {slug: by_id[cid] for slug, cid in ids.items() if cid in by_id}
    if as_json:
        from pipeline.status import campaign_status

        def with_events(report: CampaignReport) -> dict[str, Any]:
            # The owner's receipt shows the same object (pipeline.owner.receipts).
            return campaign_status(newsletter, report, stops, by_id)

        _print_json(with_events(reports[0]) if slug else [with_events(r) for r in reports])
        return
    out.print(_counts_table(rows) if rows else "No campaigns yet.")
    for report in reports:
        if report.counts.slug in stops:
            print(stops[report.counts.slug].describe(zone))
        if line := status_view.catch_up_line(caught_up, report):
            print(line)
        for line in status_view.detail_lines(report):
            print(line)  # plain: never wrapped, so a slug is never broken
