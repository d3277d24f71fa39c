"""``newsletter preflight`` and the preflight step of ``newsletter send``."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from pipeline.preflight.report import PreflightReport, Status

if TYPE_CHECKING:
    from pipeline.newsletter import Newsletter

_STYLE = {Status.PASS: "green", Status.WARN: "yellow", Status.FAIL: "bold red"}


def print_table(report: PreflightReport, console: Console) -> None:
    """One row per check: status, check, what was found, the fix."""
    table = Table(title=f"Preflight{f' of {report.slug}' if report.slug else ''}")
    for header in ("", "check", "found", "fix"):
        table.add_column(header, overflow="fold")
    for check in report.checks:
        table.add_row(
            f"[{_STYLE[check.status]}]{check.status.value}[/]",
            escape(check.name),
            escape(check.found),
            escape(check.fix or ""),
        )
    console.print(table)
    console.print(report.summary(), markup=False, highlight=False)


def print_problems(report: PreflightReport) -> None:
    """The failing and warning lines, one each on stderr (for ``send``)."""
    for check in report.checks:
        if check.status is not Status.PASS:
            print(f"preflight: {check.line()}", file=sys.stderr)


def add_preflight_command(
    app: typer.Typer, open_folder: Callable[[typer.Context], Newsletter]
) -> None:
    """Register ``preflight`` on the CLI app."""

    @app.command()
    def preflight(
        ctx: typer.Context,
        slug: Annotated[
            str | None, typer.Argument(help="Article slug (default: the next to go out).")
        ] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
        no_links: Annotated[
            bool, typer.Option("--no-links", help="Do not check the email's links.")
        ] = False,
    ) -> None:
        """Will this email reach the inbox? One line per check; exit 1 on a failure."""
        from pipeline.preflight import run_preflight

        report = run_preflight(open_folder(ctx), slug, links=not no_links)
        if as_json:
            print(json.dumps(report.as_dict(), indent=2, ensure_ascii=False))
        else:
            print_table(report, Console())
        if not report.ok:
            raise typer.Exit(1)
