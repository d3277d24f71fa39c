"""The text part's own line wrapper gives exactly what textwrap gave (it replaced it for speed)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from hypothesis import given
from hypothesis import settings as settings_for_hypothesis
from hypothesis import strategies as st

from pipeline.render.text import TEXT_WIDTH, wrap_line

# Lines as the layout hands them over (words, URLs longer than a line, runs of plain spaces)
# take the fast path; tabs, other ASCII whitespace and Unicode spaces go to textwrap.
_WORDS = st.sampled_from(["a", "word", "-", "*", "1.", "(https://x.org/a)"]) | st.text(
    alphabet="abc-/.:", min_size=1, max_size=120
)
_PLAIN = st.lists(_WORDS | st.sampled_from([" ", "  ", "   "]), max_size=80).map("".join)
_ODD = st.lists(
    _WORDS | st.sampled_from([" ", "\t", "\r", "\x0b", "\x0c", "\x1f", "\xa0", "\u3000"]),
    max_size=60,
).map("".join)


def _textwrap(line: str, width: int, indent: str) -> list[str]:
    return textwrap.wrap(
        line,
        width=width,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )


@settings_for_hypothesis(max_examples=3000, deadline=None)
@given(_PLAIN | _ODD, st.integers(min_value=1, max_value=90), st.integers(0, 100))
def test_wrap_line_matches_textwrap(line: str, width: int, indent_width: int) -> None:
    indent = " " * indent_width
    assert wrap_line(line, width, indent) == _textwrap(line, width, indent)


def test_the_sample_issue_text_wraps_as_textwrap_wraps_it() -> None:
    golden = Path(__file__).resolve().parents[1] / "golden" / "hip-pain-massage-therapy.txt"
    long_lines = [line for line in golden.read_text(encoding="utf-8").split("\n") if line]
    paragraph = " ".join(long_lines)  # one long line, like a laid-out paragraph
    for width in (20, TEXT_WIDTH):
        assert wrap_line(paragraph, width, "  ") == _textwrap(paragraph, width, "  ")


def test_a_long_url_stands_alone_and_the_hanging_indent_is_kept() -> None:
    url = "https://example.com/" + "x" * 90
    words = "and then some more words, enough of them to wrap onto the next line, please"
    line = f"  * read {url} {words}"
    wrapped = wrap_line(line, TEXT_WIDTH, "    ")
    assert wrapped == [
        "  * read",
        f"    {url}",
        "    and then some more words, enough of them to wrap onto the next line,",
        "    please",
    ]
    assert wrapped == _textwrap(line, TEXT_WIDTH, "    ")
