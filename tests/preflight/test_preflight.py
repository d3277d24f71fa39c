"""Preflight beyond DNS: the web side, the email itself, its links, and `send` refusing.

Web and link checks talk HTTP to real servers on loopback (the real web app,
and a small server that redirects, 404s and hangs); nothing touches the internet.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.config import load_settings
from pipeline.newsletter import Newsletter
from pipeline.preflight import Status, clear_cache, run_preflight
from pipeline.preflight.email import CLIP_BYTES, email_checks
from pipeline.preflight.links import link_checks
from pipeline.preflight.web import web_checks
from pipeline.render import RenderedIssue
from tests.fakes import preflight_zones as zones
from tests.fakes.dns_server import dns_server
from tests.fakes.preflight_servers import app_server, plain_server
from tests.helpers import SAMPLE_SLUG, copy_sample_folder

VALUES = {"first_name": "Sam", "unsubscribe_url": "https://news.example.com/unsubscribe/abc"}


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    clear_cache()
    yield
    clear_cache()


def closed_port_url() -> str:
    """A loopback URL where nothing listens (connection refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def issue(
    html: str, *, subject: str = "Hip pain", preheader: str = "Why it hurts"
) -> RenderedIssue:
    return RenderedIssue(slug="x", subject=subject, preheader=preheader, html=html, text="text")


def by_name(checks: tuple[object, ...]) -> dict[str, object]:
    return {c.name: c for c in checks}  # type: ignore[attr-defined]


# -- web -------------------------------------------------------------------------------


def test_the_real_apps_one_click_route_and_archive_pass(tmp_path: Path) -> None:
    settings = load_settings(
        copy_sample_folder(tmp_path / "clinic"), environ={"NEWSLETTER_SECRET_KEY": "t"}
    )
    newsletter = Newsletter(settings)
    with app_server(newsletter) as base_url:
        checks = by_name(web_checks(base_url, timeout=5, development=False))
    one_click, archive = checks["One-click unsubscribe"], checks["Archive"]
    assert one_click.status is Status.PASS, one_click  # type: ignore[attr-defined]
    assert "answers 400" in one_click.found  # type: ignore[attr-defined]
    assert archive.status is Status.PASS  # type: ignore[attr-defined]
    assert checks["Base URL"].status is Status.WARN  # type: ignore[attr-defined]  # http


def test_a_redirecting_one_click_route_fails(tmp_path: Path) -> None:
    with plain_server() as base_url:
        checks = by_name(web_checks(base_url, timeout=5, development=False))
    one_click = checks["One-click unsubscribe"]
    assert one_click.status is Status.FAIL  # type: ignore[attr-defined]
    assert "redirects (301 to https://news.example.com/unsubscribe/" in one_click.found  # type: ignore[attr-defined]


def test_on_a_loopback_base_url_a_failing_probe_only_warns() -> None:
    with plain_server() as base_url:
        checks = web_checks(base_url, timeout=5)
    assert [c.status for c in checks] == [Status.WARN, Status.WARN, Status.PASS]


def test_https_base_url_passes_and_an_unreachable_site_warns() -> None:
    checks = by_name(web_checks("https://127.0.0.1:1", timeout=2, development=False))
    assert checks["Base URL"].status is Status.PASS  # type: ignore[attr-defined]
    assert checks["One-click unsubscribe"].status is Status.WARN  # type: ignore[attr-defined]


# -- links -----------------------------------------------------------------------------


def test_a_404_and_a_slow_link_warn_and_good_links_pass() -> None:
    with plain_server() as base:
        urls = [f"{base}/ok", f"{base}/missing", f"{base}/slow", f"{base}/no-head"]
        checks = link_checks(urls, timeout=0.5, total=20)
    problems = {c.found for c in checks if c.name == "Link"}
    assert problems == {
        f"{base}/missing answered 404",
        f"{base}/slow did not answer within 0.5 s",
    }
    assert all(c.status is Status.WARN for c in checks if c.name == "Link")
    assert checks[-1].found == "2 of 4 link(s) answered"


def test_the_overall_bound_stops_the_link_check() -> None:
    with plain_server() as base:
        checks = link_checks([f"{base}/slow"], timeout=5, total=0.3)
    assert checks[0].found == f"{base}/slow not checked within the overall 0.3 s bound"


# -- the email -------------------------------------------------------------------------


def test_a_120_kb_article_fails_the_size_check() -> None:
    body = "<p>" + "x" * (120 * 1024) + '</p><a href="%%unsubscribe_url%%">Unsubscribe</a>'
    check = by_name(email_checks(issue(body), VALUES))["HTML size"]
    assert check.status is Status.FAIL  # type: ignore[attr-defined]
    assert "Gmail clips it after 102 KB" in check.found  # type: ignore[attr-defined]


def test_a_95_kb_email_warns_and_a_small_one_passes() -> None:
    footer = '<a href="%%unsubscribe_url%%">Unsubscribe</a>'
    warn = by_name(email_checks(issue("y" * (95 * 1024) + footer), VALUES))["HTML size"]
    assert warn.status is Status.WARN  # type: ignore[attr-defined]
    ok = by_name(email_checks(issue("<p>short</p>" + footer), VALUES))
    assert ok["HTML size"].status is Status.PASS  # type: ignore[attr-defined]
    assert ok["Footer"].status is Status.PASS  # type: ignore[attr-defined]
    assert CLIP_BYTES == 102 * 1024


def test_an_image_without_alt_text_is_named() -> None:
    html = '<img src="https://x.test/a.jpg" alt="A stretch"><img src="https://x.test/b.jpg">'
    checks = by_name(email_checks(issue(html + "%%unsubscribe_url%%"), VALUES))
    alt = checks["Alt text"]
    assert alt.status is Status.WARN  # type: ignore[attr-defined]
    assert alt.found == "1 image(s) without alt text: https://x.test/b.jpg"  # type: ignore[attr-defined]


def test_subject_preheader_footer_and_image_formats() -> None:
    html = '<img src="https://x.test/a.webp" alt="a"><img src="https://x.test/b.svg?v=1" alt="b">'
    checks = by_name(email_checks(issue(html, subject="S" * 80, preheader=" "), VALUES))
    assert checks["Subject"].status is Status.WARN  # type: ignore[attr-defined]
    assert checks["Preheader"].status is Status.WARN  # type: ignore[attr-defined]
    assert checks["Footer"].status is Status.FAIL  # type: ignore[attr-defined]
    formats = checks["Image formats"]
    assert "a.webp" in formats.found and "b.svg?v=1" in formats.found  # type: ignore[attr-defined]


def test_preflight_of_the_sample_issue_checks_its_own_links(tmp_path: Path) -> None:
    config = copy_sample_folder(tmp_path / "clinic")
    settings = load_settings(config, environ={"NEWSLETTER_SECRET_KEY": "t"})
    with dns_server(zones.correct_return_path()) as nameserver, plain_server() as site:
        settings = settings.model_copy(
            update={
                "web": settings.web.model_copy(update={"base_url": site}),
                "clinic": settings.clinic.model_copy(
                    update={"website": f"{site}/ok", "booking_url": f"{site}/missing"}
                ),
                "preflight": settings.preflight.model_copy(
                    update={"nameservers": (nameserver,), "link_timeout": 2.0}
                ),
            }
        )
        report = run_preflight(Newsletter(settings), SAMPLE_SLUG)
    found = [c.found for c in report.checks if c.name == "Link"]
    # the booking link and the neighbours' Previous/Next links are all checked
    assert f"{site}/missing answered 404" in found
    links = [c for c in report.checks if c.name == "Links"]
    assert links[0].found.endswith("link(s) answered")
    assert report.ok  # outbox transport, loopback site: nothing blocks


# -- send ------------------------------------------------------------------------------


def run_cli(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    environ = {
        k: v for k, v in os.environ.items() if not k.startswith(("NEWSLETTER_", "SENDGRID_"))
    }
    environ.update({"NEWSLETTER_SECRET_KEY": "preflight-test", "COLUMNS": "200"})
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *args],
        cwd=folder,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def big_folder(tmp_path: Path) -> Iterator[Path]:
    """The sample folder with a 120 KB article, DNS on loopback, no web server."""
    folder = tmp_path / "clinic"
    copy_sample_folder(folder, hermetic_dns=False)
    (folder / "articles" / "long-read.md").write_text(
        '---\ntitle: "A very long read"\n---\n' + ("Massage helps. " * 8500) + "\n",
        encoding="utf-8",
    )
    with dns_server(zones.correct_return_path()) as nameserver:
        config = folder / "newsletter.toml"
        text = config.read_text(encoding="utf-8")
        text = text.replace(
            'base_url = "http://127.0.0.1:8000"', f'base_url = "{closed_port_url()}"'
        )
        config.write_text(
            text + f'\n[preflight]\nnameservers = ["{nameserver}"]\n', encoding="utf-8"
        )
        yield folder


def test_send_refuses_on_a_failing_preflight_and_skip_preflight_sends(big_folder: Path) -> None:
    assert run_cli(big_folder, "subscribers", "import", "sample-subscribers.csv").returncode == 0
    refused = run_cli(big_folder, "send", "long-read", "--yes")
    assert refused.returncode == 1
    assert "preflight: fail  HTML size: the HTML part is" in refused.stderr
    assert "long-read: not sent: 1 preflight failure(s)" in refused.stderr
    assert not (big_folder / "outbox" / "long-read").exists()
    listed = run_cli(big_folder, "preflight", "long-read", "--json", "--no-links")
    assert listed.returncode == 1
    report = json.loads(listed.stdout)
    assert report["failures"] == 1 and report["ok"] is False
    sent = run_cli(big_folder, "send", "long-read", "--yes", "--skip-preflight")
    assert sent.returncode == 0, sent.stderr
    assert len(list((big_folder / "outbox" / "long-read").glob("*.eml"))) == 5


def test_send_passes_preflight_for_the_sample_issue(big_folder: Path) -> None:
    assert run_cli(big_folder, "subscribers", "import", "sample-subscribers.csv").returncode == 0
    sent = run_cli(big_folder, "send", SAMPLE_SLUG, "--yes")
    assert sent.returncode == 0, sent.stderr
    assert "preflight: fail" not in sent.stderr
    assert "preflight: warn  One-click unsubscribe" in sent.stderr


def test_a_scheduled_firing_holds_a_failing_send_and_says_why(
    big_folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from pipeline.schedule.jobs import send_due

    for article in (big_folder / "articles").glob("*.md"):
        if article.name != "long-read.md":
            article.unlink()
    caplog.set_level("INFO", logger="pipeline.scheduler")
    config = big_folder / "newsletter.toml"
    assert send_due(str(config)) is None
    log = "\n".join(r.getMessage() for r in caplog.records)
    assert "campaign long-read: preflight: fail  HTML size: the HTML part is" in log
    assert "campaign long-read: held: 1 preflight failure(s)" in log
    newsletter = Newsletter(load_settings(config, environ={"NEWSLETTER_SECRET_KEY": "t"}))
    assert newsletter.ledger.get_campaign("long-read") is None
    assert not (big_folder / "outbox").exists()
