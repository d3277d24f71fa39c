"""Personalization: the per-recipient merge of %%placeholders%% into a rendered issue."""

from __future__ import annotations

import time

import pytest

from pipeline.render import Personalization, Personalizer, RenderedIssue

# -- personalization ------------------------------------------------------------------------


def _values(
    first_name: str = "Sam", url: str = "https://n.example/u/abc?x=1&y=2"
) -> dict[str, str]:
    return {"first_name": first_name, "unsubscribe_url": url}


def test_personalizer_fills_html_and_text(issue: RenderedIssue) -> None:
    merge = Personalizer(issue)
    html, text = merge.html(_values()), merge.text(_values())
    assert "Hi Sam," in html and "Hi Sam," in text
    assert 'href="https://n.example/u/abc?x=1&amp;y=2"' in html
    assert "Unsubscribe: https://n.example/u/abc?x=1&y=2" in text
    assert "%%" not in html and "%%" not in text


def test_personalizer_escapes_html_but_not_text(issue: RenderedIssue) -> None:
    merge = Personalizer(issue)
    values = _values(first_name='<script>alert("x")</script>')
    html = merge.html(values)
    assert "<script>alert" not in html
    assert "Hi &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;," in html
    assert 'Hi <script>alert("x")</script>,' in merge.text(values)


def test_personalizer_is_single_pass(issue: RenderedIssue) -> None:
    merge = Personalizer(issue)
    values = _values(first_name="%%unsubscribe_url%%")
    assert "Hi %%unsubscribe_url%%," in merge.html(values)
    assert "Hi %%unsubscribe_url%%," in merge.text(values)


def test_personalizer_accepts_a_personalization_record(issue: RenderedIssue) -> None:
    merge = Personalizer(issue)
    record = Personalization(first_name="Sam", unsubscribe_url="https://n.example/u/1")
    assert merge.text(record) == merge.text(record.values())


def test_personalizer_needs_every_value(issue: RenderedIssue) -> None:
    with pytest.raises(KeyError):
        Personalizer(issue).text({"first_name": "Sam"})


def test_personalizer_is_cheap_per_recipient(issue: RenderedIssue) -> None:
    merge = Personalizer(issue)
    start = time.perf_counter()
    for n in range(1000):
        merge.html(_values(first_name=f"Sam{n}"))
    assert time.perf_counter() - start < 2.0  # generous: ~50 µs each in practice
