"""The ``newsletter subscribers`` group: import, add, remove, forget (erase), list,
show one person and export the subscriber list.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import Progress, TextColumn

from pipeline.cli.app import _open, _print_json, _table, err, out
from pipeline.errors import NotFoundError
from pipeline.newsletter import Newsletter
from pipeline.sending.welcome import prepare_welcome, send_welcomes
from pipeline.subscribers import (
    add_subscriber,
    export_csv,
    forget_subscriber,
    import_csv,
    iter_subscribers,
    remove_subscriber,
    to_json_dict,
)
from pipeline.subscribers.profile import subscriber_profile

subscribers_app = typer.Typer(help="Manage the subscriber list.", no_args_is_help=True)


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
            welcome=prepare_welcome(newsletter),
        )
    for problem in report.problems:
        print(problem, file=sys.stderr)
    out.print(
        f"{report.added} added, {report.updated} updated, {report.unchanged} unchanged, "
        f"{report.kept_left} left alone (unsubscribed earlier), {len(report.problems)} skipped"
    )
    _send_welcomes(newsletter)
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
        welcome=prepare_welcome(newsletter),
    )
    out.print(f"{record.email}: {record.status}", markup=False, highlight=False)
    _send_welcomes(newsletter)


def _send_welcomes(newsletter: Newsletter) -> None:
    """Send the welcome email to whoever just became active (when the folder has one)."""
    report = send_welcomes(newsletter)
    if report is None:
        return
    c = report.counts
    out.print(f"welcome email: {c.sent} sent in all, {c.failed} failed, {c.uncertain} uncertain")
    if not report.complete:
        raise typer.Exit(1)


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


@subscribers_app.command("show")
def subscribers_show(
    ctx: typer.Context,
    email: Annotated[str, typer.Argument()],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """One person: status, consent, and per series the parts received and the next one."""
    profile = subscriber_profile(_open(ctx), email)
    if profile is None:
        raise NotFoundError(f"{email}: no subscriber with this address")
    if as_json:
        _print_json(profile.as_dict())
        return
    # Plain prints: addresses, slugs and times are never wrapped or marked up.
    for line in _profile_lines(profile.as_dict()):
        print(line)


def _profile_lines(shown: dict[str, Any]) -> list[str]:
    """``subscribers show`` for a person: the --json object, one fact per line."""
    name = " ".join(filter(None, (shown["first_name"], shown["last_name"])))
    lines = [f"{shown['email']}{f' ({name})' if name else ''}: {shown['status']}"]
    consent = shown["consent"]
    lines.append(f"  subscribed: {consent['subscribed_at']} (source: {consent['source'] or '-'})")
    if consent["consent_at"]:
        ip = f", from {consent['consent_ip']}" if consent["consent_ip"] else ""
        lines.append(
            f"  consent: confirmed {consent['consent_at']}"
            f" via {consent['consent_source'] or '-'}{ip}"
        )
    if consent["confirm_sent_at"]:
        lines.append(f"  confirmation email sent: {consent['confirm_sent_at']}")
    if consent["unsubscribed_at"]:
        lines.append(f"  unsubscribed: {consent['unsubscribed_at']}")
    if shown["tags"]:
        lines.append(f"  tags: {';'.join(shown['tags'])}")
    for series in shown["series"]:
        track = "catch-up on" if series["catch_up"] else "catch-up off"
        lines.append(f"{series['series']} ({track}):")
        lines.extend(f"  {_received_line(r)}" for r in series["received"])
        if not series["received"]:
            lines.append("  nothing received yet")
        upcoming = series["next"]
        if upcoming is None:
            lines.append("  next: nothing planned")
        else:
            how = "on their catch-up track" if upcoming["via"] == "catch-up" else "live"
            lines.append(
                f"  next: part {upcoming['part']} {upcoming['slug']}, {how},"
                f" {upcoming['at'] or 'no date planned yet'}"
            )
    if shown["other"]:
        lines.append("other emails:")
        lines.extend(f"  {_received_line(r)}" for r in shown["other"])
    return lines


def _received_line(row: dict[str, Any]) -> str:
    part = f"part {row['part']} " if row["part"] is not None else ""
    if row["sent_at"]:
        when = f"{row['state']} {row['sent_at']}"
    elif row["catch_up_at"]:  # not sent (yet): the slot it was planned for
        when = f"{row['state']}, planned for {row['catch_up_at']}"
    else:
        when = row["state"]
    return f"{part}{row['slug']} ({row['via']}): {when}"


@subscribers_app.command("export")
def subscribers_export(ctx: typer.Context) -> None:
    """Write every subscriber as CSV to standard output (formula-like cells as text)."""
    export_csv(_open(ctx).sessions, sys.stdout)
