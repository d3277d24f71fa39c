"""The text part's line wrapper gives exactly what textwrap gave (it replaced it for speed)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from hypothesis import given
from hypothesis import settings as settings_for_hypothesis
from hypothesis import strategies as st

from pipeline.render import html_to_text
from pipeline.render.text import TEXT_WIDTH, wrap_words

# Lines as the layout hands them over: words (some longer than any line, like URLs, some
# with non-ASCII letters or a no-break space inside) separated by single spaces.
_WORD = st.sampled_from(["a", "word", "-", "*", "1.", "(https://x.org/a)", "é", "x\xa0y"]) | (
    st.text(alphabet="abc-/.:é", min_size=1, max_size=120)
)
_LINE = st.lists(_WORD, max_size=80).map(" ".join)


def _textwrap(line: str, width: int) -> list[str]:
    return textwrap.wrap(line, width=width, break_long_words=False, break_on_hyphens=False)


@settings_for_hypothesis(max_examples=3000, deadline=None)
@given(_LINE, st.integers(min_value=1, max_value=90))
def test_wrap_words_matches_textwrap(line: str, width: int) -> None:
    assert wrap_words(line, width) == _textwrap(line, width)


def test_the_sample_issue_text_wraps_as_textwrap_wraps_it() -> None:
    golden = Path(__file__).resolve().parents[1] / "golden" / "hip-pain-massage-therapy.txt"
    paragraph = " ".join(golden.read_text(encoding="utf-8").split())
    for width in (20, TEXT_WIDTH):
        assert wrap_words(paragraph, width) == _textwrap(paragraph, width)


def test_a_long_url_stands_alone_and_the_hanging_indent_is_kept() -> None:
    url = "https://example.com/" + "x" * 90
    words = "and then some more words, enough of them to wrap onto the next line, please"
    text, _ = html_to_text(f"<ul><li>read <a href='{url}'>{url}</a> {words}</li></ul>")
    assert text.split("\n") == [
        "  * read",
        f"    {url}",
        "    and then some more words, enough of them to wrap onto the next line,",
        "    please",
    ]


def test_a_list_nested_past_the_width_still_gets_a_word_a_line() -> None:
    html = "<ul><li>" * 25 + "deep words" + "</li></ul>" * 25
    first, second = html_to_text(html)[0].split("\n")
    assert first.endswith("* deep") and second == " " * 100 + "words"
