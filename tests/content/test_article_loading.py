"""load_articles: a folder of article files, and the sample articles in the repository.

Broken files are reported while the good ones load; a duplicate part or slug names both
files; the sample series loads cleanly and matches the seed article it was made from.
"""

from __future__ import annotations

import re
from pathlib import Path

from pipeline.content.articles import load_articles, read_article
from tests.content.article_helpers import SYDNEY, write

REPO = Path(__file__).resolve().parents[2]
# The seed article the sample is made from, kept in the repository.
SEED = Path(__file__).resolve().parents[1] / "data" / "seed" / "hip-pain-massage-therapy.txt"


def test_load_reports_every_broken_file_and_keeps_the_good_ones(tmp_path: Path) -> None:
    write(tmp_path, "a-good.md", "---\ntitle: Good A\n---\nA\n")
    bad_status = write(tmp_path, "b-bad.md", "---\ntitle: B\nstatus: later\n---\n")
    no_front = write(tmp_path, "c-bad.md", "Just text\n")
    broken = write(tmp_path, "d-bad.md", "---\ntitle: [D\n---\n")
    write(tmp_path, "e-good.md", "---\ntitle: Good E\n---\nE\n")
    write(tmp_path, "notes.txt", "not an article")
    write(tmp_path, ".#a-good.md", "editor lock file")

    result = load_articles(tmp_path, SYDNEY)

    assert [article.slug for article in result.articles] == ["a-good", "e-good"]
    assert [(problem.path, problem.line) for problem in result.problems] == [
        (bad_status, 3),
        (no_front, 1),
        (broken, 3),
    ]


def test_duplicate_part_in_a_series_is_reported_at_the_second_file(tmp_path: Path) -> None:
    first = write(tmp_path, "a.md", "---\ntitle: A\nseries: s\npart: 1\n---\n")
    second = write(tmp_path, "b.md", "---\ntitle: B\nseries: s\nauthor: Alan\npart: 1\n---\n")
    write(tmp_path, "c.md", "---\ntitle: C\nseries: other\npart: 1\n---\n")

    result = load_articles(tmp_path, SYDNEY)

    assert [str(problem) for problem in result.problems] == [
        f"{second}:5: duplicate part 1 in series 's': {first} is already part 1"
    ]
    assert [article.slug for article in result.articles] == ["a", "c"]


def test_duplicate_slug_names_both_files(tmp_path: Path) -> None:
    first = write(tmp_path, "hip-pain.md", "---\ntitle: A\n---\n")
    second = write(tmp_path, "z-other.md", "---\ntitle: B\n\nslug: hip-pain\n---\n")
    result = load_articles(tmp_path, SYDNEY)
    assert [str(problem) for problem in result.problems] == [
        f"{second}:4: duplicate slug 'hip-pain': {first} already uses it"
    ]
    assert [article.path for article in result.articles] == [first]


def test_missing_directory_is_one_problem(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    result = load_articles(missing, SYDNEY)
    assert result.articles == ()
    assert [str(problem) for problem in result.problems] == [
        f"{missing}:1: articles folder not found"
    ]


def test_empty_directory_is_fine(tmp_path: Path) -> None:
    assert load_articles(tmp_path, SYDNEY).articles == ()
    assert load_articles(tmp_path, SYDNEY).problems == ()


def test_sample_articles_load_cleanly_as_one_series() -> None:
    result = load_articles(REPO / "articles", SYDNEY)
    assert result.problems == ()
    by_part = sorted(result.articles, key=lambda article: article.part or 0)
    assert [(article.part, article.title) for article in by_part] == [
        (1, "Massage & Mental Health"),
        (2, "Hip Pain & How Massage Therapy Helps"),
        (3, "Massage Guns, Are they worth it?"),
    ]
    for article in by_part:
        assert article.series == "massage-and-wellbeing"
        assert article.author == "Alan"
        assert article.summary
        assert article.canonical_url is None and article.send_after is None
        assert article.status == "queued"


def test_sample_hip_pain_article_is_the_seed_text_without_blog_chrome() -> None:
    article = read_article(REPO / "articles" / "hip-pain-massage-therapy.md", SYDNEY)
    assert article.slug == "hip-pain-massage-therapy"
    body = article.body_markdown
    assert "1. **Arthritis:** Osteoarthritis and rheumatoid arthritis" in body
    assert "7. **Avascular necrosis:**" in body
    for chrome in ("Hi! I", "CloudFormMassage.com.au", "Previous", "Next\n"):
        assert chrome not in body
    assert SEED.exists(), f"{SEED} missing: the sample must be checked against the seed"
    seed = SEED.read_text(encoding="utf-8").split("\nAlan\n")[0]
    seed = seed.removeprefix("Hip Pain & How Massage Therapy Helps")
    plain = re.sub(r"^## .*$", "", body, flags=re.MULTILINE).replace("**", "")
    assert " ".join(plain.split()) == " ".join(seed.split())
