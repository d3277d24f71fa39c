"""``make bench``: how fast the pipeline is, with the settings a new user has, in one run.

Prints one table; each row gives the figure with the defaults (the folder
``newsletter init`` writes, only the transport changed: lanes and processes on
auto) beside the tuned figure where tuning applies, the target, and whether
the default figure meets it:

- render: median ms to render the sample issue (Jinja + MJML + inline + text);
- send: recipients/s for a 100,000-subscriber campaign through the SendGrid
  transport to a loopback SendGrid-compatible server (its own process, see
  ``sendgrid_process.py``), planning and ledger included, on SQLite and on
  PostgreSQL (when installed), as a fraction of the raw ceiling measured in
  the same run (the same payloads as plain dicts, ``json`` + ``http.client``
  over one kept-alive connection, no database). Best of three, in rounds
  (ceiling, SQLite defaults and tuned, PostgreSQL defaults and tuned), so a
  slow moment of the machine favours no side (see ``send_bench.py``);
- latency: 50,000 recipients when the server holds every answer 150 ms,
  against the one-at-a-time time (requests x 150 ms);
- import: rows/s of ``newsletter subscribers import`` run as a command (its
  process start counted) for 100,000 and 1,000,000 rows;
- memory: peak RSS of a 1,000,000-subscriber campaign run through the ledger
  with a transport that discards what it is given (a dry run on the real path);
- catch-up: seconds of the daily catch-up pass planning for 100,000 people at
  mixed positions in a series, on SQLite and PostgreSQL (``catch_up_bench.py``).

This is a benchmark, not a test: nothing here asserts; the targets are printed
beside the numbers. ``--scale 0.1`` runs everything at a tenth of the size;
``--only catch-up`` runs the catch-up rows alone.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from catch_up_bench import TARGET_SECONDS, CatchUpRun, bench_catch_up
from common import ROOT, SECRET, settings_for, write_csv
from send_bench import (
    LATENCY,
    TUNED,
    SendRun,
    bench_ceiling,
    bench_send,
    ceiling_payloads,
    serial_seconds,
)
from sendgrid_process import SendGridProcess

from pipeline.content.articles import read_article
from pipeline.content.series import series_nav
from pipeline.render import render_issue
from tests.helpers import SAMPLE_SLUG, copy_sample_folder

ROUNDS = (1, 2, 3)
TUNED_SETUP = f"{TUNED[0]} processes x {TUNED[1]} lanes"


@dataclass(frozen=True)
class Row:
    """One line of the table: the default figure, the tuned one, the target."""

    what: str
    value: str
    tuned: str
    target: str
    ok: bool | None = None


# -- render -----------------------------------------------------------------------


def bench_render(runs: int = 50) -> float:
    settings = settings_for(ROOT, {})
    articles_dir = ROOT / "articles"
    tz = ZoneInfo(settings.schedule.timezone)
    articles = [read_article(p, tz) for p in sorted(articles_dir.glob("*.md"))]
    article = next(a for a in articles if a.slug == SAMPLE_SLUG)
    nav = series_nav(article, articles, sent_slugs={SAMPLE_SLUG}, base_url=settings.web.base_url)
    archive = f"{settings.web.base_url}/archive/{SAMPLE_SLUG}"
    for _ in range(5):  # warm caches (template environment, inliner)
        render_issue(article, nav, settings, archive_url=archive)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        render_issue(article, nav, settings, archive_url=archive)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


# -- import and memory ------------------------------------------------------------


def bench_import(work: Path, rows: int) -> tuple[float, Path]:
    """``newsletter subscribers import`` as a command: rows/s, process start included."""
    csv = work / f"import-{rows}.csv"
    write_csv(csv, rows)
    folder = work / f"import-clinic-{rows}"
    config = copy_sample_folder(folder, hermetic_dns=False)  # no preflight: no DNS server
    command = [str(Path(sys.executable).parent / "newsletter"), "--config", str(config)]
    environ = {**os.environ, "NEWSLETTER_SECRET_KEY": SECRET}
    start = time.perf_counter()
    result = subprocess.run(
        [*command, "subscribers", "import", str(csv)], capture_output=True, text=True, env=environ
    )
    elapsed = time.perf_counter() - start
    if result.returncode != 0 or f"{rows} added" not in result.stdout:
        raise SystemExit(f"import benchmark: {result.stdout}{result.stderr}")
    return rows / elapsed, folder


def bench_memory(folder: Path) -> tuple[float, int]:
    result = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).parent / "campaign_memory.py"),
            str(folder),
            SAMPLE_SLUG,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    data = json.loads(result.stdout.strip().splitlines()[-1])
    return float(data["peak_mib"]), int(data["sent"])


# -- the table --------------------------------------------------------------------


def _postgres() -> Any:
    """A started PostgreSQL server (``tests.databases.PostgresServer``), or None."""
    try:
        from tests.databases import PostgresServer, _pg_bindir
    except ImportError:
        return None
    bindir = _pg_bindir()
    if bindir is None:
        return None
    root = Path(tempfile.mkdtemp(prefix="newsletter-bench-pg-"))
    root.chmod(0o755)
    server = PostgresServer(bindir, root / "cluster")
    try:
        server.start()
    except (subprocess.CalledProcessError, OSError):
        return None
    return server


def _stop(pg: Any) -> None:
    """Stop the server of :func:`_postgres` and remove its temporary folder."""
    if pg is not None:
        pg.stop()
        shutil.rmtree(pg.root.parent, ignore_errors=True)


def _runs(rates: list[float]) -> str:
    return " / ".join(f"{r:,.0f}" for r in rates)


def _best(runs: list[SendRun]) -> SendRun:
    return max(runs, key=lambda run: run.rate)


def _send_row(
    what: str, defaults: list[SendRun], tuned: list[SendRun], ceiling: float, target: float
) -> Row:
    best, best_tuned = _best(defaults), _best(tuned)
    return Row(
        f"{what}, auto = {best.plan} (best of {_runs([r.rate for r in defaults])})",
        # Three places: a ratio a hair under its target must not print as the target.
        f"{best.rate:,.0f} rcpt/s ({best.rate / ceiling:.3f} of ceiling)",
        f"{best_tuned.rate:,.0f} rcpt/s ({best_tuned.rate / ceiling:.3f})",
        f">= {target} of ceiling",
        best.rate / ceiling >= target,
    )


def _send_rounds(work: Path, audience: int, pg: Any, rows: list[Row]) -> None:
    """Ceiling, SQLite and PostgreSQL (defaults and tuned), three rounds, best of each."""
    with SendGridProcess() as server:
        payloads = ceiling_payloads(work / "ceiling", audience)
        ceilings: list[float] = []
        runs: dict[str, list[SendRun]] = {}
        for round_ in ROUNDS:
            print(f"raw ceiling ({round_}) ...", file=sys.stderr)
            ceilings.append(bench_ceiling(server, payloads))
            for tuned in (False, True):
                name = "tuned" if tuned else "defaults"
                print(f"send on SQLite, {name} ({round_}) ...", file=sys.stderr)
                url = f"sqlite:///{work / f'send-{name}-{round_}.db'}"
                run = bench_send(work / f"sqlite-{name}-{round_}", server, url, audience, tuned)
                runs.setdefault(f"sqlite-{name}", []).append(run)
                if pg is not None:
                    print(f"send on PostgreSQL, {name} ({round_}) ...", file=sys.stderr)
                    run = bench_send(
                        work / f"pg-{name}-{round_}", server, pg.create_database(), audience, tuned
                    )
                    runs.setdefault(f"pg-{name}", []).append(run)
    ceiling = max(ceilings)
    rows.append(
        Row(
            f"raw ceiling: {len(payloads)} POSTs, json + http.client, no DB "
            f"(best of {_runs(ceilings)})",
            f"{ceiling:,.0f} rcpt/s",
            "-",
            "-",
        )
    )
    what = f"send {audience:,} via SendGrid"
    rows.append(
        _send_row(f"{what}, SQLite", runs["sqlite-defaults"], runs["sqlite-tuned"], ceiling, 0.5)
    )
    if "pg-defaults" in runs:
        rows.append(
            _send_row(f"{what}, PostgreSQL", runs["pg-defaults"], runs["pg-tuned"], ceiling, 0.45)
        )
    else:
        rows.append(Row(f"{what}, PostgreSQL", "not run: PostgreSQL not installed", "-", "-"))


def _latency_rows(work: Path, audience: int, rows: list[Row]) -> None:
    """Every answer held LATENCY seconds: defaults and tuned against one request at a time."""
    serial = serial_seconds(audience)
    runs: dict[bool, list[SendRun]] = {False: [], True: []}
    with SendGridProcess(latency=LATENCY) as server:
        for round_ in ROUNDS:
            for tuned in (False, True):
                print(
                    f"send at {LATENCY * 1000:.0f} ms, tuned={tuned} ({round_}) ...",
                    file=sys.stderr,
                )
                url = f"sqlite:///{work / f'latency-{tuned}-{round_}.db'}"
                folder = work / f"latency-{tuned}-{round_}"
                runs[tuned].append(bench_send(folder, server, url, audience, tuned))
    best, best_tuned = _best(runs[False]), _best(runs[True])
    seconds = " / ".join(f"{r.seconds:.2f}" for r in runs[False])
    rows.append(
        Row(
            f"send {audience:,} at {LATENCY * 1000:.0f} ms per request, SQLite, "
            f"auto = {best.plan}, everyone once (runs {seconds} s)",
            f"{best.seconds:.2f} s ({serial / best.seconds:.1f}x overlap)",
            f"{best_tuned.seconds:.2f} s ({serial / best_tuned.seconds:.1f}x)",
            f"<= 1/4 of one at a time ({serial:.2f} s)",
            best.seconds <= serial / 4,
        )
    )


def _catch_up_rows(work: Path, people: int, pg: Any, rows: list[Row]) -> None:
    """The daily catch-up pass over ``people`` at mixed positions: SQLite, then PostgreSQL."""
    databases = [("SQLite", f"sqlite:///{work / 'catch-up.db'}")]
    if pg is not None:
        databases.append(("PostgreSQL", pg.create_database()))
    for name, url in databases:
        print(f"catch-up pass on {name} ...", file=sys.stderr)
        run: CatchUpRun = bench_catch_up(url, people)
        seconds = " / ".join(f"{s:.2f}" for s in run.seconds)
        rows.append(
            Row(
                f"catch-up pass planning, {people:,} people at mixed positions, {name} "
                f"(best of {seconds} s)",
                f"{run.best:.2f} s ({run.planned:,} sends planned)",
                "-",
                f"<= {TARGET_SECONDS:.0f} s",
                run.best <= TARGET_SECONDS,
            )
        )
    if pg is None:
        rows.append(Row("catch-up pass, PostgreSQL", "not run: PostgreSQL not installed", "-", "-"))


def _catch_up_alone(people: int) -> int:
    """``--only catch-up``: the catch-up rows without the rest of the table."""
    work = Path(tempfile.mkdtemp(prefix="newsletter-bench-"))
    rows: list[Row] = []
    pg = _postgres()
    try:
        _catch_up_rows(work, people, pg, rows)
    finally:
        _stop(pg)
        shutil.rmtree(work, ignore_errors=True)
    _print_table(rows)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the full sizes")
    parser.add_argument("--only", choices=["catch-up"], help="run only these rows")
    args = parser.parse_args(argv)
    catch_up_people = max(1000, int(100_000 * args.scale))
    if args.only == "catch-up":
        return _catch_up_alone(catch_up_people)

    send_audience = max(1000, int(100_000 * args.scale))
    latency_audience = max(1000, int(50_000 * args.scale))
    import_sizes = (max(1000, int(100_000 * args.scale)), max(1000, int(1_000_000 * args.scale)))
    import_targets = (25_000, 50_000)
    work = Path(tempfile.mkdtemp(prefix="newsletter-bench-"))
    rows: list[Row] = []
    try:
        print("render ...", file=sys.stderr)
        render_ms = bench_render()
        rows.append(
            Row(
                "render sample issue (median)",
                f"{render_ms:.2f} ms",
                "-",
                "<= 2 ms",
                render_ms <= 2,
            )
        )
        pg = _postgres()
        try:
            _send_rounds(work, send_audience, pg, rows)
            _catch_up_rows(work, catch_up_people, pg, rows)
        finally:
            _stop(pg)
        _latency_rows(work, latency_audience, rows)
        folder = work
        for size, target in zip(import_sizes, import_targets, strict=True):
            print(f"import {size:,} ...", file=sys.stderr)
            rate, folder = bench_import(work, size)
            rows.append(
                Row(
                    f"import {size:,}-row CSV (SQLite, a `subscribers import` command)",
                    f"{rate:,.0f} rows/s",
                    "-",
                    f">= {target:,} rows/s",
                    rate >= target,
                )
            )
        print("memory ...", file=sys.stderr)
        peak, sent = bench_memory(folder)
        rows.append(
            Row(
                f"peak RSS, {sent:,}-subscriber campaign (defaults)",
                f"{peak:,.0f} MiB",
                "-",
                "<= 150 MB",
                peak <= 150 / 1.048576,
            )
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    _print_table(rows)
    return 0


def _print_table(rows: list[Row]) -> None:
    machine = (
        f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, {platform.system()}"
    )
    print(f"\nnewsletter-pipeline benchmark ({machine}); tuned = {TUNED_SETUP}\n")
    columns = [
        ("measure (defaults)", [r.what for r in rows]),
        ("defaults", [r.value for r in rows]),
        ("tuned", [r.tuned for r in rows]),
        ("target", [r.target for r in rows]),
    ]
    widths = [max(len(title), *(len(v) for v in values)) for title, values in columns]
    header = " | ".join(title.ljust(w) for (title, _), w in zip(columns, widths, strict=True))
    print(f"| {header} | met |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|---|")
    for r in rows:
        met = "-" if r.ok is None else ("yes" if r.ok else "NO")
        cells = (r.what, r.value, r.tuned, r.target)
        line = " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True))
        print(f"| {line} | {met} |")


if __name__ == "__main__":
    sys.exit(main())
