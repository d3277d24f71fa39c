"""The dashboard's SVG charts: readable without colour or script, figures from the ledger."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest

from pipeline.newsletter import Newsletter
from pipeline.store.dashboard import Engagement, SentPoint, engagement_by_article, sends_over_time
from pipeline.web.admin.charts import engagement_chart, sends_chart
from tests.helpers import SAMPLE_SLUG, FixedClock

pytestmark = pytest.mark.anyio

SVG = "{http://www.w3.org/2000/svg}"


# -- the charts ---------------------------------------------------------------------------


def _parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg" and root.get("role") == "img"
    assert root.find(f"{SVG}title") is not None and root.find(f"{SVG}desc") is not None
    return root


def _texts(root: ET.Element) -> list[str]:
    return [t.text or "" for t in root.iter(f"{SVG}text")]


def test_the_sends_chart_is_svg_with_its_numbers_as_text() -> None:
    start = datetime(2026, 12, 1, 22, 0, tzinfo=UTC)
    points = [SentPoint(start + timedelta(seconds=10 * i), n) for i, n in enumerate((0, 400, 1234))]
    chart = sends_chart("sends", points, 1500, FixedClock().now.tzinfo or UTC)
    assert chart is not None
    root = _parse(str(chart.svg))
    texts = _texts(root)
    assert {"400", "1,234", "planned: 1,500"} <= set(texts)
    desc = root.find(f"{SVG}desc")
    assert desc is not None and "1,234 of 1,500 sent" in (desc.text or "")
    assert chart.rows[-1] == ("2026-12-01 22:00:20", "1,234")
    assert sends_chart("sends", [], 10, UTC) is None


def test_the_engagement_chart_tells_series_apart_without_colour() -> None:
    chart = engagement_chart(
        "engagement",
        [
            Engagement("a", "Hip <Pain> & Massage", 120, 30),
            Engagement("b", "Massage guns", 80, 0),
        ],
    )
    assert chart is not None
    root = _parse(str(chart.svg))  # the title's < and & are escaped: it still parses
    texts = _texts(root)
    assert {"120 opened", "30 clicked", "80 opened", "0 clicked"} <= set(texts)
    assert "opened (solid)" in texts and "clicked (hatched)" in texts
    assert root.find(f"{SVG}defs/{SVG}pattern") is not None  # the hatching
    clicked = [r for r in root.iter(f"{SVG}rect") if r.get("class") == "bar-clicked"]
    assert clicked and all((r.get("fill") or "").startswith("url(#") for r in clicked)
    assert chart.rows == (("Hip <Pain> & Massage", "120", "30"), ("Massage guns", "80", "0"))


def test_chart_figures_come_from_the_ledger_and_the_events(newsletter: Newsletter) -> None:
    newsletter.send(SAMPLE_SLUG)
    campaign = newsletter.ledger.get_campaign(SAMPLE_SLUG)
    assert campaign is not None
    points = sends_over_time(newsletter.sessions, campaign.id)
    assert points and points[-1].sent == newsletter.status(SAMPLE_SLUG)[0].sent
    [article] = engagement_by_article(newsletter.sessions)
    assert (article.slug, article.opened, article.clicked) == (SAMPLE_SLUG, 0, 0)
