"""Reading and validating article files: every mistake is `path:line: message`."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.content.articles import (
    Article,
    ArticleError,
    FrontMatter,
    front_matter_line,
    load_articles,
    read_article,
)
from pipeline.errors import Problem

SYDNEY = ZoneInfo("Australia/Sydney")
REPO = Path(__file__).resolve().parents[2]
# The seed article the sample is made from, kept in the repository.
SEED = Path(__file__).resolve().parents[1] / "data" / "seed" / "hip-pain-massage-therapy.txt"


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(path: Path) -> list[Problem]:
    with pytest.raises(ArticleError) as caught:
        read_article(path, SYDNEY)
    return caught.value.problems


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
    ("text", "line", "message"),
    [
        pytest.param(
            "---\nsummary: x\n---\nbody\n",
            1,
            "missing title: add `title: ...` to the front matter",
            id="missing-title",
        ),
        pytest.param("---\ntitle: '  '\n---\n", 2, "title must not be empty", id="empty-title"),
        pytest.param(
            "---\ntitle: 2024\n---\n",
            2,
            "title must be text, not 2024 (put it in quotes)",
            id="title-not-text",
        ),
        pytest.param(
            "---\ntitle: T\nauthor: Alan\npart: 2\n---\n",
            4,
            "part needs a series: add `series: SLUG` or remove `part`",
            id="part-without-series",
        ),
        pytest.param(
            "---\ntitle: T\nseries: pain\n---\n",
            3,
            "series 'pain' needs a part: add `part: 1` (2, 3, ...)",
            id="series-without-part",
        ),
        pytest.param(
            "---\ntitle: T\nseries: pain\npart: 0\n---\n",
            4,
            "part must be a whole number from 1 up, not 0",
            id="part-zero",
        ),
        pytest.param(
            "---\ntitle: T\nseries: pain\npart: yes\n---\n",
            4,
            "part must be a whole number from 1 up, not True",
            id="part-bool",
        ),
        pytest.param(
            "---\ntitle: T\nstatus: published\n---\n",
            3,
            "status must be queued or draft, not 'published'",
            id="unknown-status",
        ),
        pytest.param(
            "---\ntitle: T\n\nsend_after: 2026-02-30\n---\n",
            4,
            "send_after must be a date (2026-12-01) or a date and time (2026-12-01 09:00),"
            " not '2026-02-30'",
            id="impossible-date",
        ),
        pytest.param(
            "---\ntitle: T\nsend_after: next tuesday\n---\n",
            3,
            "send_after must be a date (2026-12-01) or a date and time (2026-12-01 09:00),"
            " not 'next tuesday'",
            id="unparseable-date",
        ),
        pytest.param(
            "---\ntitle: T\nsend_after: 42\n---\n",
            3,
            "send_after must be a date (2026-12-01) or a date and time (2026-12-01 09:00), not 42",
            id="number-as-date",
        ),
        pytest.param(
            "---\ntitle: T\n  author: Alan\n---\n",
            3,
            "broken YAML in front matter: mapping values are not allowed here",
            id="broken-yaml-indent",
        ),
        pytest.param(
            "---\ntitle: T\nsummary: [one, two\nauthor: Alan\n---\n",
            4,
            "broken YAML in front matter: expected ',' or ']', but got ':'"
            " (while parsing a flow sequence at line 3)",
            id="broken-yaml-unclosed",
        ),
        pytest.param(
            "---\ntitle: T\ntittle: typo\n---\n",
            3,
            "unknown key 'tittle' (did you mean 'title'?)",
            id="unknown-key-typo",
        ),
        pytest.param(
            "---\ntitle: T\ncolour: blue\n---\n",
            3,
            "unknown key 'colour' (known keys: title, series, part, slug, summary, author,"
            " canonical_url, image, send_after, status, subject)",
            id="unknown-key",
        ),
        pytest.param(
            "---\ntitle: T\nsummary: a\nsummary: b\n---\n",
            4,
            "duplicate key 'summary' (first at line 3)",
            id="duplicate-key",
        ),
        pytest.param(
            "---\ntitle: T\nslug: Hip_Pain\n---\n",
            3,
            "slug must be lowercase letters, digits and hyphens, like hip-pain, not 'Hip_Pain'",
            id="bad-slug",
        ),
        pytest.param(
            "---\ntitle: T\ncanonical_url: www.example.com/x\n---\n",
            3,
            "canonical_url must be an http:// or https:// address, not 'www.example.com/x'",
            id="bad-canonical-url",
        ),
        pytest.param(
            "---\ntitle: T\nimage: javascript:alert(1)\n---\n",
            3,
            "image must be an http:// or https:// address, not 'javascript:alert(1)'",
            id="bad-image-url",
        ),
        pytest.param(
            "# Hip pain\n\ntitle: T\n",
            1,
            "no front matter: start the file with a --- block",
            id="no-front-matter",
        ),
        pytest.param("", 1, "no front matter: start the file with a --- block", id="empty-file"),
        pytest.param(
            "---\ntitle: T\nbody without a closing line\n",
            1,
            "front matter is not closed: add a --- line after it",
            id="unclosed-front-matter",
        ),
        pytest.param(
            "---\n- title\n- T\n---\n",
            2,
            "front matter must be `key: value` lines",
            id="front-matter-a-list",
        ),
        pytest.param(
            "---\ntitle: T\nsummary: bell\x07\n---\n",
            3,
            "front matter contains a character YAML does not allow: '\\x07'",
            id="control-character",
        ),
    ],
)
def test_each_front_matter_error_is_path_line_message(
    tmp_path: Path, text: str, line: int, message: str
) -> None:
    path = write(tmp_path, "article.md", text)
    assert [str(problem) for problem in problems_of(path)] == [f"{path}:{line}: {message}"]


def test_every_problem_in_a_file_is_reported_at_once(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "article.md",
        "---\nauthor: Alan\npart: 2\nstatus: sent\nsend_after: soon\nfoo: bar\n---\n",
    )
    problems = problems_of(path)
    assert [(problem.line, problem.message.split()[0]) for problem in problems] == [
        (1, "missing"),
        (3, "part"),
        (4, "status"),
        (5, "send_after"),
        (6, "unknown"),
    ]
    error_text = str(ArticleError(problems))
    assert (
        error_text.splitlines()[0]
        == f"{path}:1: missing title: add `title: ...` to the front matter"
    )


def test_windows_line_endings_and_bom_keep_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "article.md"
    path.write_bytes(b"\xef\xbb\xbf---\r\ntitle: T\r\n\r\nstatus: gone\r\n---\r\nBody\r\n")
    assert [str(p) for p in problems_of(path)] == [
        f"{path}:4: status must be queued or draft, not 'gone'"
    ]
    path.write_bytes(b"---\r\ntitle: T\r\n---\r\nBody\r\n")
    assert read_article(path, SYDNEY).body_markdown == "Body\n"


def test_file_that_is_not_utf8_is_a_problem_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "article.md"
    path.write_bytes(b"---\ntitle: T\nsummary: caf\xe9\n---\n")
    assert [str(p) for p in problems_of(path)] == [
        f"{path}:3: not UTF-8 text: save the file as UTF-8"
    ]


def test_file_name_that_is_not_a_slug_needs_an_explicit_slug(tmp_path: Path) -> None:
    path = write(tmp_path, "My Article.md", "---\ntitle: T\n---\n")
    (problem,) = problems_of(path)
    assert problem.line == 1
    assert "'My Article.md' is not a usable slug" in problem.message


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


def test_lone_surrogate_escape_is_a_problem(tmp_path: Path) -> None:
    path = write(tmp_path, "article.md", '---\ntitle: "bad \\ud800 title"\n---\n')
    (problem,) = problems_of(path)
    assert (problem.line, problem.message) == (
        2,
        "title contains an escape that is not a real character",
    )


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


# --- load_articles -----------------------------------------------------------------------


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


# --- property: nothing a writer types escapes as anything but ArticleError ----------------

_KNOWN = [
    "title",
    "series",
    "part",
    "slug",
    "status",
    "send_after",
    "summary",
    "subject",
    "author",
    "canonical_url",
    "image",
]
_KEYS = st.one_of(st.sampled_from([*_KNOWN, "tittle"]), st.text(max_size=8))
_READABLE = st.text(st.characters(categories=("L", "N", "P", "Zs")), max_size=30)
_VALUES = st.one_of(
    _READABLE,
    st.text(max_size=30),
    st.integers(),
    st.booleans(),
    st.none(),
    st.dates(),
    st.datetimes(),
    st.floats(),
    st.sampled_from(
        ["queued", "draft", "2026-12-01", "2026-02-30", "0000-01-01", "https://x.y", "a-slug"]
    ),
    st.lists(st.integers(), max_size=3),
)


def _render(value: object, style: int) -> str:
    if style == 0:
        return str(value)  # raw: often not valid YAML, which is the point
    if style == 1:
        return json.dumps(value, default=str)  # JSON is (nearly) YAML: quoted, escaped
    return f"'{value}'"


@st.composite
def front_matter_files(draw: st.DrawFn) -> str:
    """Text that looks like an article: a --- block of key: value lines, then a body."""
    # Half the time start from a valid title, so some examples get past validation.
    fields: dict[str, object] = draw(st.sampled_from([{}, {"title": "Hip pain"}]))
    fields.update(draw(st.dictionaries(_KEYS, _VALUES, max_size=5)))
    lines = [f"{key}: {_render(value, draw(st.integers(0, 2)))}" for key, value in fields.items()]
    closing = draw(st.sampled_from(["---\n", "---\n", "---\n", "--- \n", "---\r\n", "---", ""]))
    return "---\n" + "\n".join(lines) + "\n" + closing + draw(st.text(max_size=40))


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # hypothesis runs many examples per test call; a module-scoped folder avoids
    # the function-scoped-fixture health check, and each example overwrites the file
    return tmp_path_factory.mktemp("property")


def _check_read(path: Path) -> None:
    try:
        article = read_article(path, SYDNEY)
    except ArticleError as error:
        assert error.problems
        for problem in error.problems:
            assert problem.line >= 1
            assert problem.message.strip()
            assert "\n" not in problem.message
        return
    assert article.title and "\n" not in article.title and "\r" not in article.title
    assert article.send_after is None or article.send_after.tzinfo is not None
    assert article.status in ("queued", "draft")


@settings(max_examples=200)
@given(text=st.one_of(st.text(), front_matter_files()))
def test_any_text_gives_an_article_or_article_error(scratch: Path, text: str) -> None:
    path = scratch / "article.md"
    path.write_text(text, encoding="utf-8", newline="")
    _check_read(path)


@settings(max_examples=50)
@given(data=st.binary())
def test_any_bytes_give_an_article_or_article_error(scratch: Path, data: bytes) -> None:
    path = scratch / "bytes.md"
    path.write_bytes(b"---\ntitle: T\n" + data)
    _check_read(path)
