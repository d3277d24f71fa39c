"""The ``newsletter`` command itself: the typer app, the options given before any
command (``--config``, ``--debug``, ``--version``), the helpers every command group
shares (settings, the Newsletter, tables, JSON) and ``main()``, which turns every
user error into one line on stderr (``path:line: message`` for problems in a file)
and exit status 1; ``--debug`` shows the traceback instead.

The commands live beside this module, one per command group; ``pipeline/cli/__init__.py``
imports them in the order ``newsletter --help`` lists them.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from pipeline import __version__
from pipeline.config import Settings, find_config, load_settings
from pipeline.errors import PipelineError
from pipeline.newsletter import Newsletter
from pipeline.preflight.command import add_preflight_command

app = typer.Typer(
    help="Turn a clinic's articles into a newsletter: check, queue, preview and send.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

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


# Registered here, first: `newsletter --help` lists preflight before every other command.
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
