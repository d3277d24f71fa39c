"""Reading a valid article file: front matter fields, defaults, slugs and dates.

Header fields lose their line breaks, and `send_after` is a time in the clinic's zone.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from pipeline.content.articles import Article, FrontMatter, front_matter_line, read_article
from tests.content.article_helpers import SYDNEY, write


def test_reads_a_complete_article(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "hip-pain.md",
        "---\n"
        'title: "Hip Pain & How Massage Therapy Helps"\n'
        "series: massage-and-wellbeing\n"
        "part: 2\n"
        "summary: Why hips hurt.\n"
        "author: Alan\n"
        "canonical_url: https://www.cloudformmassage.com.au/blog/hip-pain\n"
        "image: https://example.com/hip.jpg\n"
        "send_after: 2026-12-01\n"
        "status: draft\n"
        "subject: Hips!\n"
        "---\n"
        "# Body\n\nText.\n",
    )
    article = read_article(path, SYDNEY)
    assert article == Article(
        slug="hip-pain",
        title="Hip Pain & How Massage Therapy Helps",
        path=path,
        body_markdown="# Body\n\nText.\n",
        series="massage-and-wellbeing",
        part=2,
        summary="Why hips hurt.",
        author="Alan",
        canonical_url="https://www.cloudformmassage.com.au/blog/hip-pain",
        image="https://example.com/hip.jpg",
        send_after=datetime(2026, 12, 1, tzinfo=SYDNEY),
        status="draft",
        subject="Hips!",
    )
    assert article.subject_line == "Hips!"


def test_defaults_slug_from_file_name_and_status_queued(tmp_path: Path) -> None:
    article = read_article(write(tmp_path, "just-a-title.md", "---\ntitle: T\n---\n"), SYDNEY)
    assert (article.slug, article.status, article.body_markdown) == ("just-a-title", "queued", "")
    assert article.subject_line == "T"


def test_explicit_slug_wins_over_file_name(tmp_path: Path) -> None:
    path = write(tmp_path, "Some File.md", "---\ntitle: T\nslug: hip-pain\n---\n")
    assert read_article(path, SYDNEY).slug == "hip-pain"


@pytest.mark.parametrize(
    "title_yaml",
    [
        '"Hip pain\\r\\nBcc: everyone@example.com"',
        "|\n  Hip pain\n  Bcc: everyone@example.com",
        '"Hip pain\\rBcc:\\u2028everyone@example.com"',
        '"Hip   pain\\tBcc: everyone@example.com"',
    ],
)
def test_line_breaks_in_header_fields_become_single_spaces(tmp_path: Path, title_yaml: str) -> None:
    path = write(
        tmp_path,
        "article.md",
        f"---\ntitle: {title_yaml}\nsubject: 'a\n\n  b'\nsummary: \"one\\ntwo\\r\\n\"\n---\n",
    )
    article = read_article(path, SYDNEY)
    assert article.title == "Hip pain Bcc: everyone@example.com"
    assert article.subject == "a b"
    assert article.summary == "one two"
    for value in (article.title, article.subject_line, article.summary):
        assert "\r" not in value and "\n" not in value


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # a date means 00:00 in the clinic's zone (AEDT, +11:00, in December)
        ("2026-12-01", datetime(2026, 12, 1, 0, 0, tzinfo=SYDNEY)),
        ("'2026-12-01'", datetime(2026, 12, 1, 0, 0, tzinfo=SYDNEY)),
        # a time without an offset is a time in the clinic's zone
        ("2026-12-01 09:30:00", datetime(2026, 12, 1, 9, 30, tzinfo=SYDNEY)),
        ("2026-12-01 09:30", datetime(2026, 12, 1, 9, 30, tzinfo=SYDNEY)),
        ("2026-06-01T09:30", datetime(2026, 6, 1, 9, 30, tzinfo=SYDNEY)),
        # an explicit offset is kept as the same instant, shown in the clinic's zone
        ("2026-12-01T09:30:00Z", datetime(2026, 12, 1, 20, 30, tzinfo=SYDNEY)),
        ("2026-12-01T09:30:00+01:00", datetime(2026, 12, 1, 19, 30, tzinfo=SYDNEY)),
    ],
)
def test_send_after_in_the_clinic_timezone(tmp_path: Path, value: str, expected: datetime) -> None:
    path = write(tmp_path, "article.md", f"---\ntitle: T\nsend_after: {value}\n---\n")
    send_after = read_article(path, SYDNEY).send_after
    assert send_after == expected
    assert send_after is not None and send_after.tzinfo is SYDNEY


def test_send_after_date_is_midnight_sydney_not_utc(tmp_path: Path) -> None:
    path = write(tmp_path, "article.md", "---\ntitle: T\nsend_after: 2026-12-01\n---\n")
    send_after = read_article(path, SYDNEY).send_after
    assert send_after is not None
    assert send_after.utcoffset() == timedelta(hours=11)
    assert send_after.astimezone(UTC) == datetime(2026, 11, 30, 13, 0, tzinfo=UTC)
    winter = write(tmp_path, "winter.md", "---\ntitle: T\nsend_after: 2026-07-01\n---\n")
    winter_after = read_article(winter, SYDNEY).send_after
    assert winter_after is not None and winter_after.utcoffset() == timedelta(hours=10)


def test_front_matter_model_on_its_own() -> None:
    front = FrontMatter.model_validate(
        {"title": "T", "send_after": date(2026, 12, 1)}, context={"tz": SYDNEY}
    )
    assert front.send_after == datetime(2026, 12, 1, tzinfo=SYDNEY)
    assert FrontMatter.model_validate({"title": "T", "send_after": "2026-12-01"}).send_after == (
        datetime(2026, 12, 1, tzinfo=UTC)
    )


def test_front_matter_line_finds_keys(tmp_path: Path) -> None:
    path = write(tmp_path, "a.md", "---\ntitle: T\n\nseries: s\n'part': 2\n---\npart: 9\n")
    assert front_matter_line(path, "part") == 5
    assert front_matter_line(path, "slug") == 1
    assert front_matter_line(tmp_path / "missing.md", "part") == 1
