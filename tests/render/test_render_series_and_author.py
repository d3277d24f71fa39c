"""Rendering the blocks around the article: series navigation, author card, logo, hero
image and booking button; and the series title helper."""

from __future__ import annotations

import dataclasses
import re
from datetime import datetime
from zoneinfo import ZoneInfo

from pipeline.config import AuthorSettings, Settings
from pipeline.render import series_title
from tests.render.render_helpers import NEXT_URL, SAMPLE_NAV, _article, _render

# -- series navigation and author card -----------------------------------------------------


def test_article_without_series_has_no_nav_block(settings: Settings) -> None:
    issue = _render(settings)
    for part in (issue.html, issue.text):
        assert "Part " not in part
        assert "Previous:" not in part and "Next:" not in part


def test_sent_next_is_a_plain_next_link(settings: Settings) -> None:
    assert SAMPLE_NAV.next is not None
    nav = dataclasses.replace(SAMPLE_NAV, next=dataclasses.replace(SAMPLE_NAV.next, sent=True))
    issue = _render(settings, nav=nav)
    assert "Next: Massage Guns, Are they worth it? →" in issue.html
    assert "Coming next" not in issue.html and "Tue 8 Dec" not in issue.html
    assert f"Next: Massage Guns, Are they worth it?\n  {NEXT_URL}" in issue.text


def test_unsent_next_without_planned_date_still_links(settings: Settings) -> None:
    assert SAMPLE_NAV.next is not None
    nav = dataclasses.replace(
        SAMPLE_NAV,
        previous=None,
        next=dataclasses.replace(SAMPLE_NAV.next, planned_at=None),
        position=1,
    )
    issue = _render(settings, nav=nav)
    assert "Part 1 of 3" in issue.html
    assert f'href="{NEXT_URL}"' in issue.html and "Coming next:" in issue.html
    assert "—" not in issue.text.split("Coming next:")[1].splitlines()[0]
    assert "Previous" not in issue.html


def test_planned_date_is_shown_in_the_clinic_timezone(settings: Settings) -> None:
    assert SAMPLE_NAV.next is not None
    # 22:00 UTC on Monday 7 Dec is 09:00 Tuesday 8 Dec in Sydney
    utc = datetime(2026, 12, 7, 22, 0, tzinfo=ZoneInfo("UTC"))
    nav = dataclasses.replace(SAMPLE_NAV, next=dataclasses.replace(SAMPLE_NAV.next, planned_at=utc))
    assert "Tue 8 Dec" in _render(settings, nav=nav).text


def test_author_card_only_when_configured(settings: Settings) -> None:
    assert "About the author" in _render(settings, _article(author="Alan")).html
    for article in (_article(author="Someone Else"), _article(author=None)):
        issue = _render(settings, article)
        assert "About the author" not in issue.html and "About the author" not in issue.text


def test_author_photo_has_the_name_as_alt(settings: Settings) -> None:
    authors = {"Alan": AuthorSettings(bio="Bio here.", photo_url="https://img.example/alan.jpg")}
    issue = _render(settings.model_copy(update={"authors": authors}), _article(author="Alan"))
    assert re.search(r'<img[^>]*src="https://img.example/alan.jpg"[^>]*alt="Alan"', issue.html)


def test_logo_replaces_the_text_name_and_has_alt(settings: Settings) -> None:
    clinic = settings.clinic.model_copy(update={"logo_url": "https://img.example/logo.png"})
    issue = _render(settings.model_copy(update={"clinic": clinic}))
    assert re.search(
        r'<img alt="CloudForm Massage"[^>]*src="https://img.example/logo.png"', issue.html
    )
    assert ">CloudForm Massage</p>" not in issue.html


def test_hero_image_has_the_title_as_alt(settings: Settings) -> None:
    issue = _render(settings, _article(image="https://img.example/hero.jpg"))
    assert re.search(r'<img alt="Plain Article"[^>]*src="https://img.example/hero.jpg"', issue.html)


def test_no_booking_button_without_booking_url(settings: Settings) -> None:
    clinic = settings.clinic.model_copy(update={"booking_url": None})
    issue = _render(settings.model_copy(update={"clinic": clinic}))
    assert "Book a massage" not in issue.html and "Book a massage" not in issue.text


# -- helpers ---------------------------------------------------------------------------------


def test_series_title() -> None:
    assert series_title("massage-and-wellbeing") == "Massage and Wellbeing"
    assert series_title("the-art-of-rest") == "The Art of Rest"
