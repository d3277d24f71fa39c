"""The one sanitizing policy (nh3): what HTML may reach an article file or an email.

Everything we accept from outside passes through here. Two profiles share one core
(structure and emphasis, links, images, tables; http, https and mailto URLs; script,
style, iframe, object, embed, template, svg, math, form and select removed with their
content; event handlers and every other attribute dropped). The *email* profile cleans an
article's rendered Markdown as it goes into the message; the *feed* profile cleans a
blog's HTML before it becomes an article file (which the email profile then cleans again
at render time). Where they differ, the comment at each profile says why.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import nh3


@dataclass(frozen=True)
class Profile:
    """One use of the policy: the tags and attributes kept, the tags dropped with content.

    Any other tag is unwrapped (its text kept); any other attribute is dropped.
    """

    tags: frozenset[str]
    attributes: Mapping[str, frozenset[str]]
    dropped_with_content: frozenset[str]


# -- the common part -----------------------------------------------------------------

# What an article may contain once it is in an email: structure and emphasis, links,
# images and tables. Nothing that runs, submits, embeds or restyles the message.
_TAGS: Final = frozenset(
    {
        "p", "h1", "h2", "h3", "h4", "ul", "ol", "li", "strong", "em", "b", "i", "s", "del",
        "a", "img", "blockquote", "code", "pre", "hr", "br",
        "table", "thead", "tbody", "tr", "th", "td",
    }
)  # fmt: skip
_ATTRIBUTES: Final[Mapping[str, frozenset[str]]] = {
    "a": frozenset({"href", "title"}),
    "img": frozenset({"src", "alt", "title"}),
    "ol": frozenset({"start"}),
}
# Dropped with their content, not just unwrapped: their text is code or fallback noise.
_DROPPED_WITH_CONTENT: Final = frozenset(
    {"script", "style", "iframe", "object", "embed", "template", "svg", "math", "form", "select"}
)
URL_SCHEMES: Final = frozenset({"http", "https", "mailto"})


# -- the email profile ---------------------------------------------------------------

#: An article's HTML (rendered from the writer's Markdown) as it goes into the email.
EMAIL: Final = Profile(
    tags=_TAGS,
    attributes={
        **_ATTRIBUTES,
        # The writer's own image size: render keeps a width up to the article column's.
        "img": _ATTRIBUTES["img"] | {"width", "height"},
        # markdown-it writes a table column's alignment as style="text-align:..."
        # (and only text-align survives: see filter_style_properties below).
        "th": frozenset({"style"}),
        "td": frozenset({"style"}),
    },
    # Only the core list: what reaches here is Markdown a writer wrote or the feed
    # profile already cleaned, and a longer list would change existing emails.
    dropped_with_content=_DROPPED_WITH_CONTENT,
)


@functools.lru_cache(maxsize=32)
def _email_cleaner(base_url: str | None) -> nh3.Cleaner:
    # A relative link in an email has nothing to be relative to: resolve it against
    # the article's page on the blog when we know it, else drop it (never a dead link).
    relative: nh3.UrlRelative = ("rewrite_with_base", base_url) if base_url else "deny"
    return nh3.Cleaner(
        tags=EMAIL.tags,
        clean_content_tags=EMAIL.dropped_with_content,
        attributes=EMAIL.attributes,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer",
        filter_style_properties={"text-align"},
        url_relative=relative,
    )


def clean_email_html(fragment: str, *, base_url: str | None = None) -> str:
    """Clean HTML for an email with the email profile.

    Relative URLs are resolved against ``base_url`` when it is an absolute http(s)
    URL and removed otherwise; links get ``rel="noopener noreferrer"``.
    """
    if base_url is not None and not base_url.startswith(("http://", "https://")):
        base_url = None
    return _email_cleaner(base_url).clean(fragment)


# -- the feed profile ----------------------------------------------------------------

#: A blog's HTML (a feed entry's content) before it becomes an article file.
FEED: Final = Profile(
    # Blogs use h5/h6; their text stays a heading, written as h4 (email shows down to h4).
    tags=_TAGS | {"h5", "h6"},
    # No image sizes or table styles: they fit the blog's page, and Markdown (what
    # the article file holds) cannot carry them anyway; render sizes every image.
    attributes=_ATTRIBUTES,
    # A blog's HTML can be a whole page's worth: its controls, media fallbacks and
    # head say nothing an article should, so they go with their content.
    dropped_with_content=_DROPPED_WITH_CONTENT
    | {"textarea", "button", "noscript", "head", "title", "canvas", "audio", "video"},
)


def _drop_empty_urls(tag: str, attribute: str, value: str) -> str | None:
    # feedparser blanks a javascript: href to ""; nh3 would then resolve "" to the
    # base address, a link to nowhere in particular. Drop it instead.
    if attribute in {"href", "src"} and not value.strip():
        return None
    return value


@functools.lru_cache(maxsize=32)
def _feed_cleaner(base_url: str) -> nh3.Cleaner:
    # No rel on links: the result becomes Markdown, which cannot keep it; the email
    # profile adds it at render time.
    return nh3.Cleaner(
        tags=set(FEED.tags),
        clean_content_tags=set(FEED.dropped_with_content),
        attributes={tag: set(names) for tag, names in FEED.attributes.items()},
        url_schemes=set(URL_SCHEMES),
        url_relative=("rewrite_with_base", base_url),
        attribute_filter=_drop_empty_urls,
        link_rel=None,
    )


def clean_feed_html(fragment: str, *, base_url: str) -> str:
    """Clean feed HTML with the feed profile, resolving relative links against ``base_url``.

    No script, style, iframe, form, input, object, svg, event handler,
    ``javascript:``, ``data:`` or other non-web URL survives; an image left
    without a source is removed.
    """
    cleaned = _feed_cleaner(base_url).clean(fragment)
    # nh3's output is normalized, so these patterns see every <img> and heading:
    # an image without a source shows nothing; email shows headings down to h4.
    cleaned = re.sub(r"<img(?![^>]*\ssrc=)[^>]*>", "", cleaned)
    return re.sub(r"<(/?)h[56]>", r"<\1h4>", cleaned)


# -- text only -----------------------------------------------------------------------


def text_only(fragment: str) -> str:
    """The text of an HTML fragment, every tag removed (entities left as they are)."""
    # tags=set() keeps text only; script and style go with their content
    return nh3.clean(fragment, tags=set())
