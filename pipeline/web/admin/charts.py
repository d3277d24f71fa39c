"""The Campaigns pages' charts: SVG drawn on the server, readable without colour.

No script and no chart library (nothing is loaded from anywhere): each chart
is a small ``<svg role="img">`` with a ``<title>`` and a ``<desc>`` that say
what it shows in words, every number written beside what it measures, and
two series told apart by a pattern (solid against hatched) and a text
legend, never by colour alone. The page shows the same numbers in a table
below each chart, for screen readers and for anyone who prefers one. Colours
come from the page's CSS variables (``.chart`` rules in the templates), so
the charts follow the brand colour and dark mode.

Every text that reaches the SVG goes through :func:`html.escape`; the result
is marked safe for Jinja only here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import tzinfo
from html import escape

from markupsafe import Markup

from pipeline.store.dashboard import Engagement, SentPoint

#: The drawing's coordinate space; the SVG scales to the page's width.
WIDTH = 640
_ROW = 22  # one bar's height in the engagement chart
_LABEL_W = 200  # room for an article's title left of its bars


@dataclass(frozen=True)
class Chart:
    """One chart: the SVG, and the rows of its table fallback."""

    svg: Markup
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


def _n(value: int) -> str:
    return f"{value:,}"


def _svg(chart_id: str, title: str, desc: str, height: int, body: list[str]) -> Markup:
    t, d = f"{chart_id}-title", f"{chart_id}-desc"
    # Every piece of text in ``body`` was escaped where it was made.
    return Markup(
        f'<svg class="chart" id="{escape(chart_id)}" role="img" viewBox="0 0 {WIDTH} {height}"'
        f' width="100%" aria-labelledby="{t} {d}" xmlns="http://www.w3.org/2000/svg">'
        f'<title id="{t}">{escape(title)}</title><desc id="{d}">{escape(desc)}</desc>'
        + "".join(body)
        + "</svg>"
    )


def sends_chart(
    chart_id: str, points: Sequence[SentPoint], planned: int, zone: tzinfo
) -> Chart | None:
    """Rows sent over time (cumulative), with each point's number written above it."""
    if not points:
        return None
    height, left, right, top, bottom = 240, 56, 24, 28, 44
    plot_w, plot_h = WIDTH - left - right, height - top - bottom
    peak = max(planned, points[-1].sent, 1)
    start, end = points[0].at, points[-1].at
    span = (end - start).total_seconds() or 1.0

    def xy(point: SentPoint) -> tuple[float, float]:
        x = left + plot_w * ((point.at - start).total_seconds() / span if end > start else 1.0)
        return round(x, 1), round(top + plot_h * (1 - point.sent / peak), 1)

    coords = [xy(p) for p in points]
    line = " ".join(f"{x},{y}" for x, y in coords)
    base = top + plot_h
    body = [
        # Axes and the planned line: the goal the curve climbs to.
        f'<line class="axis" x1="{left}" y1="{base}" x2="{WIDTH - right}" y2="{base}"/>',
        f'<line class="axis" x1="{left}" y1="{top}" x2="{left}" y2="{base}"/>',
        f'<line class="goal" x1="{left}" y1="{top}" x2="{WIDTH - right}" y2="{top}"/>',
        f'<text class="label" x="{left - 6}" y="{top + 4}" text-anchor="end">{_n(peak)}</text>',
        f'<text class="label" x="{left - 6}" y="{base + 4}" text-anchor="end">0</text>',
        f'<text class="label" x="{WIDTH - right}" y="{top - 8}" text-anchor="end">'
        f"planned: {_n(planned)}</text>",
        f'<polyline class="series" points="{line}"/>',
    ]
    # Every point's number above it; with many points, every other one (the last always).
    stride = 1 if len(points) <= 8 else 2
    for i, (point, (x, y)) in enumerate(zip(points, coords, strict=True)):
        body.append(f'<circle class="series-dot" cx="{x}" cy="{y}" r="3.5"/>')
        if i % stride == 0 or i == len(points) - 1:
            body.append(
                f'<text class="value" x="{x}" y="{max(y - 8, 12)}" text-anchor="middle">'
                f"{_n(point.sent)}</text>"
            )
    first, last = start.astimezone(zone), end.astimezone(zone)
    body.append(
        f'<text class="label" x="{left}" y="{height - 14}">{escape(f"{first:%H:%M:%S}")}</text>'
    )
    body.append(
        f'<text class="label" x="{WIDTH - right}" y="{height - 14}" text-anchor="end">'
        f"{escape(f'{last:%H:%M:%S}')}</text>"
    )
    desc = (
        f"{_n(points[-1].sent)} of {_n(planned)} sent between {first:%H:%M:%S} and "
        f"{last:%H:%M:%S} ({zone}); the table below lists each moment."
    )
    rows = tuple((f"{p.at.astimezone(zone):%Y-%m-%d %H:%M:%S}", _n(p.sent)) for p in points)
    svg = _svg(chart_id, "Emails sent over time", desc, height, body)
    return Chart(svg, ("Time", "Sent by then"), rows)


def _short(text: str, limit: int = 28) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def engagement_chart(chart_id: str, articles: Sequence[Engagement]) -> Chart | None:
    """Opened (solid) and clicked (hatched) bars per article, each with its number."""
    if not articles:
        return None
    legend_h, gap = 30, 14
    height = legend_h + len(articles) * (2 * _ROW + gap) + 8
    peak = max(max(a.opened, a.clicked) for a in articles) or 1
    bar_w = WIDTH - _LABEL_W - 70
    hatch = f"{chart_id}-hatch"
    body = [
        f'<defs><pattern id="{hatch}" patternUnits="userSpaceOnUse" width="8" height="8"'
        ' patternTransform="rotate(45)"><rect class="hatch-bg" width="8" height="8"/>'
        '<line class="hatch" x1="0" y1="0" x2="0" y2="8"/></pattern></defs>',
        # The legend: a swatch of each pattern with its name in words.
        '<rect class="bar-opened" x="0" y="6" width="16" height="14"/>',
        '<text class="label" x="22" y="18">opened (solid)</text>',
        f'<rect class="bar-clicked" fill="url(#{hatch})" x="150" y="6" width="16" height="14"/>',
        '<text class="label" x="172" y="18">clicked (hatched)</text>',
    ]
    y = legend_h
    for article in articles:
        body.append(
            f'<text class="label" x="0" y="{y + _ROW + 4}">{escape(_short(article.subject))}</text>'
        )
        for offset, (kind, value) in enumerate(
            (("opened", article.opened), ("clicked", article.clicked))
        ):
            top = y + offset * _ROW
            width = round(bar_w * value / peak, 1)
            fill = f' fill="url(#{hatch})"' if kind == "clicked" else ""
            body.append(
                f'<rect class="bar-{kind}"{fill} x="{_LABEL_W}" y="{top + 2}"'
                f' width="{max(width, 1)}" height="{_ROW - 4}"/>'
            )
            body.append(
                f'<text class="value" x="{_LABEL_W + max(width, 1) + 6}" y="{top + _ROW - 6}">'
                f"{_n(value)} {kind}</text>"
            )
        y += 2 * _ROW + gap
    desc = "; ".join(
        f"{a.subject}: {_n(a.opened)} opened, {_n(a.clicked)} clicked" for a in articles
    )
    rows = tuple((a.subject, _n(a.opened), _n(a.clicked)) for a in articles)
    svg = _svg(chart_id, "Opens and clicks per article", desc, height, body)
    return Chart(svg, ("Article", "Opened", "Clicked"), rows)
