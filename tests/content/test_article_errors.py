"""Mistakes in an article file: every one is `path:line: message`, all reported at once.

Bad front matter values, broken YAML, unknown keys, encodings and line endings.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.content.articles import ArticleError, read_article
from pipeline.errors import Problem
from tests.content.article_helpers import SYDNEY, write


def problems_of(path: Path) -> list[Problem]:
    with pytest.raises(ArticleError) as caught:
        read_article(path, SYDNEY)
    return caught.value.problems


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


def test_lone_surrogate_escape_is_a_problem(tmp_path: Path) -> None:
    path = write(tmp_path, "article.md", '---\ntitle: "bad \\ud800 title"\n---\n')
    (problem,) = problems_of(path)
    assert (problem.line, problem.message) == (
        2,
        "title contains an escape that is not a real character",
    )
