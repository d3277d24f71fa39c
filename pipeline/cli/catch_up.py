"""``newsletter catch-up``: today's catch-up pass, by hand.

    newsletter catch-up --yes         plan today's catch-up sends and send them now
    newsletter catch-up --dry-run     list who would get which part (nothing stored)

Exactly what the scheduler runs daily at the send time
(:func:`pipeline.schedule.catch_up_track.run_pass`); a second run the same day
sends nothing. Exit status 1 when a part was not fully delivered (rows in
doubt are ``uncertain``, never resent blind: ``send SLUG --resend-uncertain``).
"""

from __future__ import annotations

import signal
import sys
from typing import Annotated

import typer

from pipeline.cli.app import _open, _print_json, app, out
from pipeline.errors import PipelineError
from pipeline.newsletter import SendReport
from pipeline.schedule.catch_up_track import run_pass
from pipeline.sending.runner import CampaignRunner


@app.command("catch-up")
def catch_up(
    ctx: typer.Context,
    yes: Annotated[bool, typer.Option("--yes", help="Really send (required).")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List who would get which part; send nothing.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Run today's catch-up pass now: late joiners get the series parts they missed."""
    if not (yes or dry_run):
        raise PipelineError("catch-up needs --yes to send (or --dry-run to list only)")
    newsletter = _open(ctx)
    runners: list[CampaignRunner] = []

    def graceful_stop(signum: int, _frame: object) -> None:
        if not runners or runners[-1].stopping:
            raise KeyboardInterrupt
        runners[-1].request_stop()

    signal.signal(signal.SIGTERM, graceful_stop)
    signal.signal(signal.SIGINT, graceful_stop)
    reports: list[SendReport] = []

    def send(slug: str) -> None:
        if runners and runners[-1].stopping:
            return  # asked to stop: the rest stay pending for the next pass
        reports.append(newsletter.send(slug, on_runner=runners.append))

    report = run_pass(newsletter, dry_run=dry_run, send=send)
    if as_json:
        _print_json(
            {
                "slot": report.slot,
                "dry_run": report.dry_run,
                "parts": [p.as_dict() for p in report.parts],
                "sent": [r.counts.as_dict() for r in reports],
            }
        )
    else:
        verb = "would get" if dry_run else "gets"
        for part in report.parts:
            for email in part.emails:
                out.print(f"{email} {verb} {part.series} part {part.part} ({part.slug})")
        when = f"send time {report.slot}"
        if not report.parts:
            out.print(f"catch-up ({when}): nobody is due a part today")
        else:
            did = "would send" if dry_run else "planned"
            out.print(f"catch-up ({when}): {did} {report.people} email(s)")
    failed = False
    for sent in reports:
        c = sent.counts
        if not sent.complete:
            failed = True
            print(
                f"{c.slug}: not everything was delivered: {c.failed} failed, "
                f"{c.uncertain} uncertain, {c.pending} not sent yet (see `newsletter status`)",
                file=sys.stderr,
            )
    if failed:
        raise typer.Exit(1)
