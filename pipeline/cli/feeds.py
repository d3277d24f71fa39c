"""The ``import-feed`` command: a blog's RSS or Atom feed into articles/ (the work
itself is in pipeline/feeds/; this module reads the options and prints the report).
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from pipeline.cli.app import _open, app

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
