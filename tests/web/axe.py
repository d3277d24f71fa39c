"""Accessibility checked, not claimed: axe-core run inside the test's own Chromium.

``assert_accessible(page)`` loads ``node_modules/axe-core/axe.min.js`` (installed
from npm by ``make``'s install step: ``npm ci``) into the page and each of its
frames, runs ``axe.run`` with the WCAG 2.0/2.1 A and AA rules plus axe's best
practices, in light and in dark (the dashboard and the public pages have both,
and contrast is where they differ), and fails listing every violation with its
rule id, impact and the elements it found.

The bar is the issue's: no *serious* or *critical* violation. Lesser ones are
named in the failure message when there is one, so they are not lost, but do not
fail a test on their own (axe's "moderate" best practices, such as content
outside a landmark in an email preview frame, are advice rather than barriers).

Without axe-core (``npm ci`` not run) the check skips, except under
``REQUIRE_ALL=1`` (CI), where that is a failure, like the other browser tests.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.databases import unavailable
from tests.helpers import ROOT

if TYPE_CHECKING:
    from playwright.sync_api import Page

AXE_SCRIPT = ROOT / "node_modules" / "axe-core" / "axe.min.js"

#: WCAG 2.0 and 2.1, levels A and AA, and axe's best practices.
TAGS = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice")
#: Impacts that fail a test (axe's scale: minor, moderate, serious, critical).
FAILING = frozenset({"serious", "critical"})
SCHEMES = ("light", "dark")

# Runs in the page: axe's promise is awaited by Playwright; only what the message needs
# comes back (a node's target is a list of selectors, one per frame level).
_RUN = """async (tags) => {
  const result = await axe.run(document, {
    runOnly: {type: 'tag', values: tags},
    resultTypes: ['violations'],
    iframes: true,
  });
  return result.violations.map(v => ({
    id: v.id,
    impact: v.impact || 'unknown',
    help: v.help,
    nodes: v.nodes.map(n => ({
      target: n.target.map(t => Array.isArray(t) ? t.join(' >> ') : String(t)).join(' >> '),
      summary: (n.failureSummary || '').split('\\n').slice(0, 3).join(' '),
    })),
  }));
}"""


def _axe_script() -> Path:
    if not AXE_SCRIPT.exists():
        unavailable(f"{AXE_SCRIPT.relative_to(ROOT)} is missing (run `npm ci` or `make install`)")
    return AXE_SCRIPT


def _inject(page: Page, script: Path) -> None:
    """axe in every frame: the top one gathers the frames' results (``iframes: true``).

    Not ``add_script_tag``: our pages' Content-Security-Policy allows no script, and
    a script tag is refused. Playwright's evaluate runs over the DevTools protocol,
    which the page's policy does not govern, so the check needs no change to it.
    """
    source = script.read_text(encoding="utf-8")
    for frame in page.frames:
        if frame.is_detached():
            continue
        if not frame.evaluate("() => typeof window.axe !== 'undefined'"):
            frame.evaluate(f"{source}\n;undefined")


def _describe(violations: Iterable[dict[str, Any]]) -> list[str]:
    lines = []
    for v in violations:
        lines.append(f"- {v['id']} ({v['impact']}): {v['help']}")
        for node in v["nodes"][:8]:
            lines.append(f"    {node['target']}: {node['summary']}")
        if len(v["nodes"]) > 8:
            lines.append(f"    ... and {len(v['nodes']) - 8} more")
    return lines


def violations(page: Page, *, scheme: str | None = None) -> list[dict[str, Any]]:
    """Every axe violation on the page as it is now (in ``scheme`` when given)."""
    script = _axe_script()
    if scheme is not None:
        page.emulate_media(color_scheme=scheme)  # type: ignore[arg-type]
    _inject(page, script)
    found: list[dict[str, Any]] = page.evaluate(_RUN, list(TAGS))
    return found


def assert_accessible(
    page: Page,
    *,
    context: str | None = None,
    schemes: Iterable[str] = SCHEMES,
) -> None:
    """Fail when axe finds a serious or critical violation on ``page``, light or dark.

    ``context`` names what is checked in the failure (default: the page's URL).
    The page's own colour scheme is put back afterwards.
    """
    label = context or page.url
    was_dark = bool(page.evaluate("() => matchMedia('(prefers-color-scheme: dark)').matches"))
    problems: list[str] = []
    failing = False
    try:
        for scheme in schemes:
            found = violations(page, scheme=scheme)
            if found:
                problems.append(f"{scheme}:")
                problems.extend(_describe(found))
            failing = failing or any(v["impact"] in FAILING for v in found)
    finally:
        page.emulate_media(color_scheme="dark" if was_dark else "light")
    assert not failing, f"axe found accessibility violations on {label}:\n" + "\n".join(problems)
