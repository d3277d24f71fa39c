"""Property: nothing a writer types escapes as anything but ArticleError.

Random text, article-like front matter and random bytes either read as a valid
article or fail with `ArticleError` problems that each have a line and one-line message.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.content.articles import ArticleError, read_article
from tests.content.article_helpers import SYDNEY

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
