"""The ``newsletter users`` group: dashboard accounts (add, list, remove).

``users add EMAIL --role owner|writer`` asks for the password twice without
echoing it, or reads one line from stdin with ``--password-stdin`` (for
scripts: a password never belongs on a command line, where ``ps`` shows it).
"""

from __future__ import annotations

import getpass
import sys
from typing import Annotated

import typer

from pipeline.accounts import account_email, check_password, hash_password, parse_role
from pipeline.cli.app import _open, _print_json, _table, out
from pipeline.errors import NotFoundError, PipelineError
from pipeline.store.users import add_user, list_users, remove_user

users_app = typer.Typer(help="Dashboard accounts (owners and writers).", no_args_is_help=True)


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        # One line; only its line ending is dropped (spaces may be part of a passphrase).
        return sys.stdin.readline().removesuffix("\n").removesuffix("\r")
    first = getpass.getpass("Password: ")
    check_password(first)  # say so before asking again
    if getpass.getpass("Repeat the password: ") != first:
        raise PipelineError("the two passwords differ; nothing changed")
    return first


@users_app.command("add")
def users_add(
    ctx: typer.Context,
    email: Annotated[str, typer.Argument(help="The person's email address (their login).")],
    role: Annotated[str, typer.Option("--role", help="owner or writer.")] = "writer",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin (one line).")
    ] = False,
) -> None:
    """Create an account for the dashboard (/admin)."""
    address = account_email(email)
    chosen = parse_role(role)
    password_hash = hash_password(_read_password(password_stdin))
    newsletter = _open(ctx)
    add_user(newsletter.sessions, address, chosen.value, password_hash, newsletter.clock())
    out.print(f"Added {address} as {chosen.value}", markup=False, highlight=False)


@users_app.command("list")
def users_list(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Every account and its role (never a password hash)."""
    users = list_users(_open(ctx).sessions)
    if as_json:
        _print_json(
            [
                {"email": u.email, "role": u.role, "created_at": u.created_at.isoformat()}
                for u in users
            ]
        )
        return
    table = _table("email", "role", "created")
    for user in users:
        table.add_row(user.email, user.role, user.created_at.isoformat(timespec="seconds"))
    out.print(table if users else "No accounts yet: `newsletter users add EMAIL --role owner`.")


@users_app.command("remove")
def users_remove(
    ctx: typer.Context, email: Annotated[str, typer.Argument(help="The account's address.")]
) -> None:
    """Delete an account; its sessions end with it."""
    if not remove_user(_open(ctx).sessions, email.strip()):
        raise NotFoundError(f"no account for {email.strip()}")
    out.print(f"Removed {email.strip()}", markup=False, highlight=False)
