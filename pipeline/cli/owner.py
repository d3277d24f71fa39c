"""``newsletter notifications``: what was sent to the owner (``[owner] email``), newest first."""

from __future__ import annotations

from typing import Annotated

import typer

from pipeline.cli.app import _open, _print_json, app, out
from pipeline.store.notifications import NotificationStore


@app.command()
def notifications(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Show at most this many.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """What was sent to the owner (receipts, alerts, heads-ups), newest first."""
    newsletter = _open(ctx)
    zone = newsletter.settings.schedule.tz
    sent = NotificationStore(newsletter.sessions).recent(limit)
    if as_json:
        _print_json([record.as_dict(zone) for record in sent])
        return
    if not sent:
        owners = newsletter.settings.owner.email
        out.print(
            "Nothing sent to the owner yet."
            if owners
            else "Nothing sent to the owner: set [owner] email in newsletter.toml."
        )
        return
    for record in sent:
        # Plain prints: one line each, never wrapped.
        when = record.sent_at.astimezone(zone).isoformat(timespec="seconds")
        print(f"{when}  {record.kind:<14} {record.summary}  (to {', '.join(record.recipients)})")
