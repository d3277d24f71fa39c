"""The text part's layout of an article's sanitized HTML (pipeline/render/html_text.py)."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import settings as settings_for_hypothesis
from hypothesis import strategies as st

from pipeline.render import TEXT_WIDTH, html_to_text, markdown_to_html


def _text(fragment: str) -> str:
    return html_to_text(fragment)[0]


def test_paragraphs_are_separated_by_one_blank_line_and_br_breaks_the_line() -> None:
    assert _text("<p>One <strong>two</strong>\n   three</p><p>four<br>five</p>") == (
        "One two three\n\nfour\nfive"
    )


def test_headings_are_underlined_as_long_as_their_text() -> None:
    assert _text("<h2>Why hips hurt</h2><p>x</p>") == "Why hips hurt\n-------------\n\nx"


def test_lists_are_bulleted_nested_and_numbered_from_start() -> None:
    html = "<ul><li>a</li><li>b<ul><li>c</li></ul></li></ul><ol start='3'><li>x</li></ol>"
    assert _text(html) == "  * a\n  * b\n      + c\n 3. x"


def test_a_long_list_item_hangs_under_its_text() -> None:
    words = " ".join(["stretch"] * 20)
    lines = _text(f"<ol><li>{words}</li></ol>").split("\n")
    assert lines[0].startswith(" 1. stretch") and len(lines) == 3
    assert all(line.startswith("    stretch") for line in lines[1:])
    assert all(len(line) <= TEXT_WIDTH for line in lines)


def test_paragraphs_in_a_list_item_keep_their_blank_line_under_the_text() -> None:
    assert _text("<ol><li><p>b</p><p>b2</p></li></ol>") == " 1. b\n\n    b2"


def test_a_quote_is_marked_on_every_line_and_wraps_inside_the_mark() -> None:
    words = " ".join(["massage"] * 12)  # 95 characters: two lines
    text = _text(f"<blockquote><p>{words}</p><p>more</p></blockquote><p>after</p>")
    lines = text.split("\n")
    assert lines[0].startswith("> massage") and lines[1].startswith("> massage")
    assert lines[2:] == [">", "> more", "", "after"]
    assert all(len(line) <= TEXT_WIDTH for line in lines)


def test_an_empty_quote_leaves_no_mark_and_an_empty_item_keeps_its_bullet() -> None:
    assert _text("<p>a</p><blockquote></blockquote><p>b</p>") == "a\n\nb"
    assert _text("<ul><li>a</li><li></li></ul>") == "  * a\n  *"


def test_preformatted_text_keeps_its_lines_and_is_not_wrapped() -> None:
    code = "def f():\n    return 1\n\n" + "x = " + "1 + " * 30 + "1\n"
    text = _text(f"<pre><code>{code}</code></pre><p>z</p>")
    assert text == code.rstrip("\n") + "\n\nz"


def test_a_rule_images_and_entities() -> None:
    html = "<p>a &amp; b &lt;c&gt;</p><hr><p>see <img src='x.png' alt='chart'> here</p>"
    assert _text(html) == "a & b <c>\n\n* * *\n\nsee here"


def test_table_cells_line_up_in_columns() -> None:
    html = (
        "<table><thead><tr><th>Treatment</th><th>Price</th></tr></thead>"
        "<tbody><tr><td>Massage, 60 min</td><td>$90</td></tr>"
        "<tr><td>Cupping</td><td>$45</td></tr></tbody></table><p>z</p>"
    )
    assert _text(html) == (
        "Treatment        Price\nMassage, 60 min  $90\nCupping          $45\n\nz"
    )


def test_links_show_their_address_once() -> None:
    html = (
        "<p>See <a href='https://e.com/g'> the guide </a>or "
        "<a href='https://e.com/raw'>https://e.com/raw</a>, "
        "<a href='mailto:desk@clinic.example'>desk@clinic.example</a>, "
        "<a href='https://e.com/pic'><img src='p.png'></a>.</p>"
    )
    assert " ".join(_text(html).split("\n")) == (
        "See the guide (https://e.com/g) or https://e.com/raw, desk@clinic.example, "
        "https://e.com/pic."
    )


def test_words_only_leave_out_addresses_bullets_and_underlines() -> None:
    html = "<h2>Hips</h2><ul><li>See <a href='https://e.com/g'>the guide</a></li></ul>"
    assert html_to_text(html)[1] == "Hips\nSee the guide"


def test_empty_and_comment_only_fragments_give_no_text() -> None:
    assert html_to_text("") == ("", "")
    assert html_to_text("  <!-- nothing -->  ") == ("", "")


_WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=90)
_PARAGRAPH = st.lists(_WORD, min_size=1, max_size=40)
_BLOCK = st.tuples(st.sampled_from(["", "## ", "- ", "1. ", "> "]), _PARAGRAPH)


@settings_for_hypothesis(max_examples=300, deadline=None)
@given(st.lists(_BLOCK, min_size=1, max_size=8))
def test_every_word_comes_through_once_in_order_within_the_width(
    blocks: list[tuple[str, list[str]]],
) -> None:
    markdown = "\n\n".join(mark + " ".join(words) for mark, words in blocks)
    text, words_only = html_to_text(markdown_to_html(markdown))
    # bullets, numbers and quote marks; underlines are all dashes
    shown = [w for w in text.split() if not re.fullmatch(r"[*>]|\d+\.|-+", w)]
    expected = [w for _, words in blocks for w in words]
    assert shown == expected
    assert words_only.split() == expected
    for line in text.split("\n"):
        assert len(line) <= TEXT_WIDTH or " " not in re.sub(r"^ *(?:[*>]|\d+\.)? *", "", line)
