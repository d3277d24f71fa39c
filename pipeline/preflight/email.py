"""Checks of the rendered email itself: size, footer, alt text, subject, preheader, images.

Gmail clips an HTML part over about 102 KB behind a "[Message clipped]" link,
which hides the footer with the unsubscribe link: that is the one check here
that blocks a send. The rest are warnings a writer can act on.
"""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urlsplit

from pipeline.preflight.report import Check, failed, passed, warned
from pipeline.render import Personalizer, RenderedIssue

GROUP = "email"
CLIP_BYTES = 102 * 1024
WARN_BYTES = 90 * 1024
MAX_SUBJECT = 80
#: Not shown by Outlook for Windows (and SVG not by Gmail on the web).
RISKY_IMAGE_TYPES = (".webp", ".avif", ".svg")


class _Collector(HTMLParser):
    """Images (src, alt) and link targets of an HTML document."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.images: list[tuple[str, str | None]] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "img":
            self.images.append((values.get("src") or "", values.get("alt")))
        elif tag == "a" and values.get("href"):
            self.links.append(values["href"] or "")


def collect(html: str) -> _Collector:
    """Parse ``html`` once for its images and links."""
    parser = _Collector()
    parser.feed(html)
    parser.close()
    return parser


def _kb(size: int) -> str:
    return f"{size / 1024:.1f} KB"


def email_checks(issue: RenderedIssue, values: dict[str, str]) -> tuple[Check, ...]:
    """The email lines of a preflight, for the issue as one recipient gets it."""
    html = Personalizer(issue).html(values)
    size = len(html.encode("utf-8"))
    checks: list[Check] = []
    if size > CLIP_BYTES:
        checks.append(
            failed(
                GROUP,
                "HTML size",
                f"the HTML part is {_kb(size)}: Gmail clips it after 102 KB, hiding the "
                "footer and its unsubscribe link",
                f"shorten the article (or split it in two) by at least {_kb(size - CLIP_BYTES)}",
            )
        )
    elif size >= WARN_BYTES:
        checks.append(
            warned(
                GROUP,
                "HTML size",
                f"the HTML part is {_kb(size)}, close to Gmail's 102 KB clipping limit",
                "shorten the article a little, so later edits do not push it over",
            )
        )
    else:
        checks.append(passed(GROUP, "HTML size", f"{_kb(size)} (Gmail clips over 102 KB)"))
    unsubscribe = values.get("unsubscribe_url", "")
    if unsubscribe and unsubscribe in html:
        checks.append(passed(GROUP, "Footer", "the unsubscribe link is in the HTML part"))
    else:
        checks.append(
            failed(
                GROUP,
                "Footer",
                "the HTML part has no unsubscribe link",
                "keep {{ unsubscribe_url }} in the footer of templates/newsletter.mjml",
            )
        )
    found = collect(html)
    no_alt = [src for src, alt in found.images if not (alt or "").strip()]
    if no_alt:
        checks.append(
            warned(
                GROUP,
                "Alt text",
                f"{len(no_alt)} image(s) without alt text: {', '.join(no_alt[:3])}",
                "describe each image in the article: ![what it shows](url)",
            )
        )
    else:
        checks.append(passed(GROUP, "Alt text", f"all {len(found.images)} image(s) have alt text"))
    risky = [
        src for src, _ in found.images if urlsplit(src).path.lower().endswith(RISKY_IMAGE_TYPES)
    ]
    if risky:
        checks.append(
            warned(
                GROUP,
                "Image formats",
                f"Outlook for Windows does not show .webp, .avif or .svg (nor Gmail .svg): "
                f"{', '.join(risky[:3])}",
                "use .jpg or .png versions of these images",
            )
        )
    if len(issue.subject) >= MAX_SUBJECT:
        checks.append(
            warned(
                GROUP,
                "Subject",
                f"the subject is {len(issue.subject)} characters; inboxes cut it off",
                f"set a shorter subject: in the article's front matter (under {MAX_SUBJECT})",
            )
        )
    else:
        checks.append(passed(GROUP, "Subject", f"{len(issue.subject)} characters"))
    if issue.preheader.strip():
        checks.append(passed(GROUP, "Preheader", issue.preheader[:60]))
    else:
        checks.append(
            warned(
                GROUP,
                "Preheader",
                "no preheader: inboxes show whatever text comes first",
                "add a summary: line to the article's front matter",
            )
        )
    return tuple(checks)
