"""``newsletter bounces``: read the bounce mailbox (``[bounces]``) now and say what it held."""

from __future__ import annotations

from typing import Annotated

import typer

from pipeline.bounces.mailbox import read_bounces
from pipeline.cli.app import _open, _print_json, app, out
from pipeline.errors import ConfigError


@app.command()
def bounces(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Read the bounce mailbox now: mark permanent failures bounced, count the rest."""
    newsletter = _open(ctx)
    try:
        report = read_bounces(newsletter.settings, newsletter.sessions, newsletter.clock)
    finally:
        newsletter.close()
    if report is None:
        raise ConfigError("bounces: no mailbox configured ([bounces] maildir or imap_host)")
    if as_json:
        _print_json(report.as_dict())
        return
    out.print(
        f"{report.messages} message(s) read: {len(report.bounced)} subscriber(s) marked bounced,"
        f" {len(report.already_left)} already gone, {len(report.unknown)} unknown address(es),"
        f" {report.not_bounces} not a permanent failure (left alone)",
        markup=False,
        highlight=False,
    )
    for address in report.bounced:
        out.print(f"bounced: {address}", markup=False, highlight=False)
