"""Commands about the newsletter folder and its articles: ``init`` (scaffold a folder
from the sample), ``check`` (every problem in settings, templates and articles),
``queue`` (what goes out next, and when) and ``preview`` (the files a subscriber gets).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Annotated

import typer

from pipeline.cli.app import _open, _print_json, _settings, _state, _table, app, err, out
from pipeline.config import Settings, find_config
from pipeline.content.articles import load_articles
from pipeline.content.series import series_nav, series_problems
from pipeline.errors import ConfigError, PipelineError, Problem, TemplateError
from pipeline.links import archive_url
from pipeline.render import render_issue
from pipeline.sample import SAMPLE_DIR
from pipeline.settings_check import check_services

DEFAULTS_DIR = SAMPLE_DIR

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
            render_issue(article, nav, settings, archive_url=archive_url(base_url, article.slug))
        except TemplateError as exc:
            problems.append(Problem(article.path, 1, f"does not render: {exc}"))
            break  # a broken template breaks every article the same way
    return len(found.articles) + len({p.path for p in found.problems}), problems


@app.command()
def check(ctx: typer.Context) -> None:
    """Validate settings, templates and every article; one line per problem."""
    try:
        settings = _settings(ctx)
        check_services(settings, find_config(_state(ctx).config))
    except ConfigError as exc:
        # print, not rich: one line however long (rich would wrap at the terminal width)
        print(str(exc), file=sys.stderr)
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
    from pipeline.owner.hold import hold_note
    from pipeline.store.holds import HoldStore

    for hold in HoldStore(newsletter.sessions).in_force():
        print(hold_note(newsletter, hold))  # why a firing sends nothing


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
