"""Done when: the clinic's feed end to end, and the `import-feed` command.

The Squarespace feed becomes a series that `newsletter check` accepts and that renders
with previous/next links; hostile markup from a feed never reaches a rendered email.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import load_settings
from pipeline.content.series import series_nav
from pipeline.newsletter import Newsletter
from tests.feeds.feed_helpers import FEEDS, IN_EMAIL, SERIES_LINKS, run
from tests.helpers import copy_sample_folder


def test_the_clinic_feed_becomes_a_working_series(tmp_path: Path) -> None:
    from pipeline.cli import collect_problems

    config = copy_sample_folder(tmp_path / "clinic")
    for path in (tmp_path / "clinic" / "articles").glob("*.md"):
        path.unlink()
    settings_ = load_settings(config, environ={"NEWSLETTER_SECRET_KEY": "feed-test"})
    newsletter = Newsletter(settings_)
    try:
        report = run(
            FEEDS / "squarespace.xml",
            settings_.articles_path,
            newsletter.sessions,
            series="massage-and-wellbeing",
            sent=tuple(newsletter.ledger.sent_slugs()),
        )
        assert [a.part for a in report.added] == [1, 2, 3]
        # `newsletter check` finds nothing wrong
        count, problems = collect_problems(settings_)
        assert (count, problems) == (3, [])
        found = newsletter.articles()
        series = sorted(found.articles, key=lambda a: a.part or 0)
        assert [a.canonical_url for a in series] == SERIES_LINKS  # publish order
        for index, article in enumerate(series):
            issue = newsletter.render(article.slug)
            nav = series_nav(article, series, sent_slugs=(), base_url=settings_.web.base_url)
            assert nav is not None
            if index > 0:
                assert nav.previous is not None and nav.previous.url == SERIES_LINKS[index - 1]
                assert f'href="{SERIES_LINKS[index - 1]}"' in issue.html
            if index < 2:
                assert nav.next is not None and nav.next.url == SERIES_LINKS[index + 1]
                assert f'href="{SERIES_LINKS[index + 1]}"' in issue.html
        again = run(
            FEEDS / "squarespace.xml",
            settings_.articles_path,
            newsletter.sessions,
            series="massage-and-wellbeing",
        )
        assert again.added == () and again.unchanged == 3

        # hostile markup from a feed never reaches a rendered email
        hostile = run(FEEDS / "hostile.xml", settings_.articles_path, series="hostile")
        issue = newsletter.render(hostile.added[0].slug)
        assert "Kept text one." in issue.html and "Kept text two" in issue.html
        # The email design has <style> and <meta> of its own: no more than a benign issue.
        benign = newsletter.render(series[1].slug).html.lower()
        for tag in ("<style", "<meta"):
            assert issue.html.lower().count(tag) == benign.count(tag)
        for part in (issue.html, issue.text, issue.subject, issue.preheader):
            found = IN_EMAIL.search(part)
            assert found is None, part[max(0, found.start() - 200) : found.end() + 200]
    finally:
        newsletter.close()


def test_the_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from pipeline.cli import main

    config = copy_sample_folder(tmp_path / "clinic")
    for path in (tmp_path / "clinic" / "articles").glob("*.md"):
        path.unlink()
    args = ["--config", str(config), "import-feed", str(FEEDS / "squarespace.xml")]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NEWSLETTER_SECRET_KEY", "feed-test")
        assert main([*args, "--series", "massage-and-wellbeing"]) == 0
        first = capsys.readouterr()
        assert main([*args, "--series", "massage-and-wellbeing"]) == 0
        second = capsys.readouterr()
        assert main([*args[:-1], str(tmp_path / "missing.xml"), "--series", "s"]) == 1
        missing = capsys.readouterr()
        assert main([*args[:-1], str(FEEDS / "missing-fields.xml"), "--series", "s"]) == 0
        partial = capsys.readouterr()
        assert main([*args, "--series", "s", "--status", "sent"]) == 1
        bad_option = capsys.readouterr()
    assert "added    hip-pain-massage-therapy.md (part 2)" in first.out
    assert first.err == ""
    assert "0 added" in second.out and "3 unchanged" in second.out
    assert (
        missing.err.strip()
        == f"{tmp_path / 'missing.xml'}: no such file (give a feed file or an http(s) URL)"
    )
    assert len(partial.err.strip().splitlines()) == 2 and "1 added" in partial.out
    assert bad_option.err.strip() == "error: --status must be queued or draft, not 'sent'"
