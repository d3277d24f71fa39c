"""Article + series links + settings -> one :class:`RenderedIssue`; a cheap per-recipient merge.

An issue is rendered ONCE per campaign: Markdown -> sanitized HTML -> Jinja2 fills the
MJML template -> MJML makes email HTML -> CSS is inlined. What differs per recipient
(their first name, their unsubscribe link) is left in the output as ``%%name%%``
placeholders, which :class:`Personalizer` (or SendGrid's substitutions) fills in later.
"""

from __future__ import annotations

import functools
import html
import re
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import css_inline
import jinja2
import mjml
import nh3
from inscriptis import get_text
from inscriptis.model.config import ParserConfig
from inscriptis.model.tag import CustomHtmlTagHandlerMapping
from markdown_it import MarkdownIt
from markupsafe import Markup

from pipeline.config import Settings
from pipeline.content.articles import Article
from pipeline.content.series import SeriesLink, SeriesNav
from pipeline.errors import TemplateError

#: Per-recipient values, written into a rendered issue as ``%%name%%``.
PLACEHOLDERS: Final = ("first_name", "unsubscribe_url")
HTML_TEMPLATE: Final = "newsletter.mjml"
TEXT_TEMPLATE: Final = "newsletter.txt"
#: The design the package ships; a folder's own ``templates_dir`` overrides it file by file.
DEFAULT_TEMPLATES_DIR: Final = Path(__file__).parent.parent / "defaults" / "templates"
PREHEADER_LENGTH: Final = 140
#: Plain-text line width: fits every mail client without their own re-wrapping.
TEXT_WIDTH: Final = 76

_PLACEHOLDER_RE: Final = re.compile("%%(" + "|".join(PLACEHOLDERS) + ")%%")


def placeholder(name: str) -> str:
    """The token a template writes for the per-recipient value ``name``."""
    return f"%%{name}%%"


# -- records -------------------------------------------------------------------------


@dataclass(frozen=True)
class RenderedIssue:
    """One campaign's email, the same for every recipient until personalized."""

    slug: str
    subject: str
    preheader: str
    html: str
    text: str


@dataclass(frozen=True)
class Personalization:
    """What is personal to one recipient. The caller applies the first-name fallback."""

    first_name: str
    unsubscribe_url: str

    def values(self) -> dict[str, str]:
        """The placeholder values, by placeholder name."""
        return {"first_name": self.first_name, "unsubscribe_url": self.unsubscribe_url}


# -- Markdown -> safe HTML -----------------------------------------------------------

# What an article may contain once it is in an email: structure and emphasis, links,
# images and tables. Nothing that runs, submits, embeds or restyles the message.
_ALLOWED_TAGS: Final = frozenset(
    {
        "p", "h1", "h2", "h3", "h4", "ul", "ol", "li", "strong", "em", "b", "i", "s", "del",
        "a", "img", "blockquote", "code", "pre", "hr", "br",
        "table", "thead", "tbody", "tr", "th", "td",
    }
)  # fmt: skip
_ALLOWED_ATTRIBUTES: Final = {
    "a": frozenset({"href", "title"}),
    "img": frozenset({"src", "alt", "width", "height", "title"}),
    "ol": frozenset({"start"}),
    # markdown-it writes a table column's alignment as style="text-align:..."
    "th": frozenset({"style"}),
    "td": frozenset({"style"}),
}
# Dropped with their content, not just unwrapped: their text is code or fallback noise.
_DROPPED_WITH_CONTENT: Final = frozenset(
    {"script", "style", "iframe", "object", "embed", "template", "svg", "math", "form", "select"}
)
_URL_SCHEMES: Final = frozenset({"http", "https", "mailto"})

_markdown: Final = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])


@functools.lru_cache(maxsize=32)
def _cleaner(base_url: str | None) -> nh3.Cleaner:
    # A relative link in an email has nothing to be relative to: resolve it against
    # the article's page on the blog when we know it, else drop it (never a dead link).
    relative: nh3.UrlRelative = ("rewrite_with_base", base_url) if base_url else "deny"
    return nh3.Cleaner(
        tags=_ALLOWED_TAGS,
        clean_content_tags=_DROPPED_WITH_CONTENT,
        attributes=_ALLOWED_ATTRIBUTES,
        url_schemes=_URL_SCHEMES,
        link_rel="noopener noreferrer",
        filter_style_properties={"text-align"},
        url_relative=relative,
    )


#: The article column's width in pixels (600 px card less 2 x 32 px padding).
ARTICLE_IMAGE_WIDTH: Final = 536
_IMG_RE: Final = re.compile(r"<img\b([^>]*?)\s*/?>")
_WIDTH_ATTR_RE: Final = re.compile(r'\swidth="(\d*)[^"]*"')
_HEIGHT_ATTR_RE: Final = re.compile(r'\sheight="[^"]*"')


def _sized_image(match: re.Match[str]) -> str:
    attrs = match.group(1)
    width = _WIDTH_ATTR_RE.search(attrs)
    if width and width.group(1) and 0 < int(width.group(1)) <= ARTICLE_IMAGE_WIDTH:
        return match.group(0)  # the author's own smaller width
    # A height that went with another width would distort the image: CSS keeps height:auto.
    attrs = _HEIGHT_ATTR_RE.sub("", _WIDTH_ATTR_RE.sub("", attrs))
    return f'<img{attrs} width="{ARTICLE_IMAGE_WIDTH}">'


def sized_images(fragment: str) -> str:
    """Give every image a pixel ``width`` (536, or the author's smaller one).

    Outlook for Windows ignores ``max-width`` on images: without the attribute
    a large image shows at its natural size and breaks the 600 px card.
    """
    return _IMG_RE.sub(_sized_image, fragment)


def markdown_to_html(markdown: str, *, base_url: str | None = None) -> str:
    """Render Markdown (inline HTML allowed) and sanitize it with an email allow-list.

    The result is always nh3-clean: no script, style, iframe, form, event handler or
    ``javascript:`` URL survives. Relative URLs are resolved against ``base_url``
    (an absolute http(s) URL) or removed when there is none.
    """
    if base_url is not None and not base_url.startswith(("http://", "https://")):
        base_url = None
    return _cleaner(base_url).clean(_markdown.render(markdown))


# -- HTML -> plain text --------------------------------------------------------------

# inscriptis writes links as [text](url); we want "text (url)", and just "url" when the
# text is the URL. Private-use characters mark links and headings so that link text
# may hold brackets; any such character in the input is dropped first.
_LINK_OPEN, _LINK_MID, _LINK_CLOSE, _HEADING = "\ue000", "\ue001", "\ue002", "\ue003"
_MARKERS_RE: Final = re.compile(f"[{_LINK_OPEN}{_LINK_MID}{_LINK_CLOSE}{_HEADING}]")
_MARKED_LINK_RE: Final = re.compile(f"{_LINK_OPEN}(.*?){_LINK_MID}(.*?){_LINK_CLOSE}", re.S)
_HEADING_TAG_RE: Final = re.compile(r"<(h[1-4])>")
_MARKED_HEADING_RE: Final = re.compile(f"^( *){_HEADING}(.*)$", re.M)


def _link_start(state: Any, attrs: Mapping[str, str]) -> None:
    state.link_target = attrs.get("href", "")
    if state.link_target:
        state.tags[-1].write(_LINK_OPEN)


def _link_end(state: Any) -> None:
    if state.link_target:
        state.tags[-1].write(_LINK_MID + state.link_target + _LINK_CLOSE)


_TEXT_CONFIG: Final = ParserConfig(
    custom_html_tag_handler_mapping=CustomHtmlTagHandlerMapping(
        start_tag_mapping={"a": _link_start}, end_tag_mapping={"a": _link_end}
    )
)


def _link_as_text(match: re.Match[str]) -> str:
    text, url = match.group(1).strip(), match.group(2)
    shown = url.removeprefix("mailto:")
    return shown if text in (url, shown) else f"{text} ({shown})"


def _underline(match: re.Match[str]) -> str:
    indent, heading = match.group(1), match.group(2).rstrip()
    rule = "-" * min(len(heading), TEXT_WIDTH - len(indent))
    return f"{indent}{heading}\n{indent}{rule}"


_LIST_ITEM_RE: Final = re.compile(r"\s*(?:[*+\-•]|\d+\.)\s+|\s*")


def _wrap(text: str, width: int = TEXT_WIDTH) -> str:
    """Wrap long lines, keeping list items' hanging indent and never breaking a URL."""
    lines: list[str] = []
    for line in text.splitlines():
        if len(line) <= width:
            lines.append(line.rstrip())
            continue
        prefix = _LIST_ITEM_RE.match(line)
        indent = " " * (prefix.end() if prefix else 0)
        lines.extend(
            textwrap.wrap(
                line,
                width=width,
                subsequent_indent=indent,
                break_long_words=False,
                break_on_hyphens=False,
            )
        )
    return "\n".join(lines)


def html_to_text(fragment: str) -> tuple[str, str]:
    """Plain text of a sanitized HTML fragment: ``(with link URLs, wrapped; words only)``.

    Headings are underlined; a link becomes ``text (url)``.
    """
    fragment = _HEADING_TAG_RE.sub(rf"<\1>{_HEADING}", _MARKERS_RE.sub("", fragment))
    raw = get_text(fragment, _TEXT_CONFIG)
    with_links = _MARKED_HEADING_RE.sub(_underline, _MARKED_LINK_RE.sub(_link_as_text, raw))
    words_only = _MARKERS_RE.sub("", _MARKED_LINK_RE.sub(lambda m: m.group(1), raw))
    return _wrap(with_links).strip("\n"), words_only


# -- small helpers for the template -----------------------------------------------------

_SMALL_WORDS: Final = frozenset(
    {"a", "an", "and", "as", "at", "but", "by", "for", "in", "of", "on", "or", "the", "to", "vs"}
)
_WEEKDAYS: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS: Final = (
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
)  # fmt: skip


def series_title(slug: str) -> str:
    """``massage-and-wellbeing`` -> ``Massage and Wellbeing``."""
    words = [w for w in re.split(r"[-_\s]+", slug) if w]
    return " ".join(
        w if i and w in _SMALL_WORDS else w[:1].upper() + w[1:] for i, w in enumerate(words)
    )


def short_date(moment: datetime, settings: Settings) -> str:
    """``Tue 8 Dec`` in the clinic's timezone, the same in every locale."""
    local = moment.astimezone(settings.schedule.tz) if moment.tzinfo else moment
    return f"{_WEEKDAYS[local.weekday()]} {local.day} {_MONTHS[local.month - 1]}"


_BREAKS_RE: Final = re.compile(r"[\s\x00-\x1f\x7f]+")


def single_line(value: str) -> str:
    """Collapse CR, LF, tabs and other control characters to single spaces (header-safe)."""
    return _BREAKS_RE.sub(" ", value).strip()


def _preheader(article: Article, words_only: str) -> str:
    if article.summary and article.summary.strip():
        return single_line(article.summary)
    text = single_line(words_only)
    if len(text) <= PREHEADER_LENGTH:
        return text
    cut = text[: PREHEADER_LENGTH + 1].rsplit(" ", 1)[0].rstrip(" ,.;:-\u2013\u2014")
    return cut + "…"


def _display_url(url: str) -> str:
    return re.sub(r"^https?://", "", url).rstrip("/")


# Colours: the brand colour drives buttons, links and tints, but a light brand colour
# must never make white-on-brand or brand-on-white text unreadable.
_WHITE, _INK, _DARK_CARD = "#ffffff", "#1b1f1e", "#1d2321"


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    value = hex_colour.lstrip("#")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def _luminance(hex_colour: str) -> float:
    def channel(c: int) -> float:
        s = c / 255
        return s / 12.92 if s <= 0.03928 else float(((s + 0.055) / 1.055) ** 2.4)

    r, g, b = (channel(c) for c in _rgb(hex_colour))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    """WCAG contrast ratio of two ``#rrggbb`` colours."""
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def _mix(a: str, b: str, amount: float) -> str:
    """``a`` moved ``amount`` (0..1) of the way towards ``b``."""
    mixed = (round(x + (y - x) * amount) for x, y in zip(_rgb(a), _rgb(b), strict=True))
    return "#" + "".join(f"{c:02x}" for c in mixed)


def _readable_on(background: str, start: str, towards: str) -> str:
    """``start`` nudged towards ``towards`` until it reads on ``background`` (WCAG AA)."""
    for step in range(11):
        candidate = _mix(start, towards, step / 10)
        if contrast(candidate, background) >= 4.5:
            return candidate
    return towards


@dataclass(frozen=True)
class Theme:
    """Colours derived from the clinic's brand colour."""

    brand: str
    button: str
    on_brand: str
    link: str
    link_dark: str
    tint: str
    tint_dark: str

    @classmethod
    def from_brand(cls, brand: str) -> Theme:
        """Derive readable link, button and tint colours for light and dark mode."""
        brand = brand.lower()
        on_brand = _WHITE if contrast(brand, _WHITE) >= contrast(brand, _INK) else _INK
        # a mid-tone brand reads poorly with either text colour: deepen it for the button
        away = "#000000" if on_brand == _WHITE else _WHITE
        return cls(
            brand=brand,
            button=_readable_on(on_brand, brand, away),
            on_brand=on_brand,
            link=_readable_on(_WHITE, brand, "#000000"),
            link_dark=_readable_on(_DARK_CARD, _mix(brand, _WHITE, 0.45), _WHITE),
            tint=_mix(brand, _WHITE, 0.92),
            tint_dark=_mix(brand, _DARK_CARD, 0.82),
        )


@dataclass(frozen=True)
class NavLink:
    """A previous/next link as the templates show it."""

    title: str
    url: str
    sent: bool
    planned: str | None  # e.g. "Tue 8 Dec", only for a neighbour not sent yet


@dataclass(frozen=True)
class NavView:
    """The series block: "Part 2 of 3 in ..." and the neighbours."""

    series_title: str
    part: int
    position: int
    total: int
    previous: NavLink | None
    next: NavLink | None


@dataclass(frozen=True)
class AuthorView:
    """The author card under the article."""

    name: str
    bio: str | None
    photo_url: str | None


def _nav_link(link: SeriesLink | None, settings: Settings) -> NavLink | None:
    if link is None:
        return None
    planned = None
    if not link.sent and link.planned_at is not None:
        planned = short_date(link.planned_at, settings)
    return NavLink(title=link.title, url=link.url, sent=link.sent, planned=planned)


def _nav_view(nav: SeriesNav | None, settings: Settings) -> NavView | None:
    if nav is None:
        return None
    return NavView(
        series_title=series_title(nav.series),
        part=nav.part,
        position=nav.position,
        total=nav.total,
        previous=_nav_link(nav.previous, settings),
        next=_nav_link(nav.next, settings),
    )


def _author_view(article: Article, settings: Settings) -> AuthorView | None:
    if not article.author or article.author not in settings.authors:
        return None
    author = settings.authors[article.author]
    return AuthorView(name=article.author, bio=author.bio, photo_url=author.photo_url)


# -- templates -----------------------------------------------------------------------


def _autoescape(name: str | None) -> bool:
    # HTML-ish templates escape every value; the plain-text twin must not.
    return name is not None and name.endswith((".mjml", ".html"))


@functools.lru_cache(maxsize=8)
def _environment(templates_dir: Path) -> jinja2.Environment:
    # The folder's own templates win, file by file; the package's design fills the gaps.
    loader = jinja2.ChoiceLoader(
        [jinja2.FileSystemLoader(templates_dir), jinja2.FileSystemLoader(DEFAULT_TEMPLATES_DIR)]
    )
    env = jinja2.Environment(
        loader=loader,
        autoescape=_autoescape,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["display_url"] = _display_url
    return env


@functools.lru_cache(maxsize=1)
def _inliner() -> css_inline.CSSInliner:
    # keep_style_tags: the @media rules (mobile, dark mode) and client-specific rules
    # such as Outlook.com's [data-ogsc] must stay in <style>; everything else is also
    # inlined for clients that drop <style>. Never fetch a remote stylesheet.
    return css_inline.CSSInliner(
        keep_style_tags=True,
        keep_at_rules=True,
        load_remote_stylesheets=False,
    )


def _template_location(exc: BaseException, fallback: str) -> str:
    """``file:line`` of the template frame an error came from (jinja2 rewrites tracebacks)."""
    found = fallback
    tb = exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.endswith((".mjml", ".txt", ".html")):
            found = f"{filename}:{tb.tb_lineno}"
        tb = tb.tb_next
    return found


def _render_template(env: jinja2.Environment, name: str, context: Mapping[str, Any]) -> str:
    try:
        return env.get_template(name).render(context)
    except jinja2.TemplateSyntaxError as exc:
        where = exc.filename or exc.name or name
        raise TemplateError(f"{where}:{exc.lineno}: {exc.message}") from exc
    except jinja2.TemplateNotFound as exc:
        raise TemplateError(f"template {exc.name!r} not found in {_search_dirs(env)}") from exc
    except jinja2.TemplateError as exc:  # e.g. an undefined variable at render time
        raise TemplateError(f"{_template_location(exc, name)}: {exc}") from exc


def _search_dirs(env: jinja2.Environment) -> str:
    loader = env.loader
    dirs: list[str] = []
    if isinstance(loader, jinja2.ChoiceLoader):
        for inner in loader.loaders:
            if isinstance(inner, jinja2.FileSystemLoader):
                dirs.extend(str(p) for p in inner.searchpath)
    return ", ".join(dirs)


def _mjml_to_html(source: str) -> str:
    try:
        # fonts={}: a system font stack needs no web font, so no remote font <link>.
        email_html = mjml.mjml2html(source, disable_comments=True, fonts={})
    except ValueError as exc:
        raise TemplateError(f"{HTML_TEMPLATE}: MJML does not render: {exc}") from exc
    return _inliner().inline(email_html)


def _collapse_blank_lines(text: str) -> str:
    text = "\n".join(line.rstrip() for line in text.splitlines())
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n") + "\n"


def render_issue(
    article: Article, nav: SeriesNav | None, settings: Settings, *, archive_url: str
) -> RenderedIssue:
    """Render ``article`` once for a whole campaign, placeholders left for each recipient.

    Raises :class:`TemplateError` naming the template file (and line) when a template
    is missing or broken.
    """
    body_html = sized_images(
        markdown_to_html(article.body_markdown, base_url=article.canonical_url)
    )
    body_text, words_only = html_to_text(body_html)
    preheader = _preheader(article, words_only)
    context: dict[str, Any] = {
        "article": article,
        "title": single_line(article.title),
        "subject": single_line(article.subject_line),
        "preheader": preheader,
        "image": article.image,
        "body_html": Markup(body_html),
        "body_text": body_text,
        "nav": _nav_view(nav, settings),
        "author": _author_view(article, settings),
        "clinic": settings.clinic,
        "theme": Theme.from_brand(settings.clinic.brand_color),
        "archive_url": archive_url,
        "text_width": TEXT_WIDTH,
        **{name: placeholder(name) for name in PLACEHOLDERS},
    }
    env = _environment(settings.templates_path)
    mjml_source = _render_template(env, HTML_TEMPLATE, context)
    text = _render_template(env, TEXT_TEMPLATE, context)
    return RenderedIssue(
        slug=article.slug,
        subject=context["subject"],
        preheader=preheader,
        html=_mjml_to_html(mjml_source),
        text=_collapse_blank_lines(text),
    )


# -- per-recipient merge ---------------------------------------------------------------


class _Compiled:
    """A document split once into literal chunks and the placeholder names between them."""

    __slots__ = ("literals", "names")

    def __init__(self, document: str) -> None:
        pieces = _PLACEHOLDER_RE.split(document)
        self.literals: tuple[str, ...] = tuple(pieces[0::2])
        self.names: tuple[str, ...] = tuple(pieces[1::2])

    def merge(self, values: Mapping[str, str]) -> str:
        # One pass over precompiled pieces: a value that itself looks like a
        # placeholder is copied verbatim, never expanded again.
        out = [self.literals[0]]
        for name, literal in zip(self.names, self.literals[1:], strict=True):
            out.append(values[name])
            out.append(literal)
        return "".join(out)


class Personalizer:
    """Merges one recipient's values into a rendered issue; build once per campaign."""

    def __init__(self, issue: RenderedIssue) -> None:
        self.issue = issue
        self._html = _Compiled(issue.html)
        self._text = _Compiled(issue.text)
        self._html_names = frozenset(self._html.names)

    @staticmethod
    def _values(values: Mapping[str, str] | Personalization) -> Mapping[str, str]:
        return values.values() if isinstance(values, Personalization) else values

    def html(self, values: Mapping[str, str] | Personalization) -> str:
        """The HTML part for one recipient; values are HTML-escaped (quotes too).

        Raises ``KeyError`` when a placeholder in the issue has no value.
        """
        raw = self._values(values)
        escaped = {name: html.escape(raw[name], quote=True) for name in self._html_names}
        return self._html.merge(escaped)

    def text(self, values: Mapping[str, str] | Personalization) -> str:
        """The plain-text part for one recipient; values are inserted as they are."""
        return self._text.merge(self._values(values))
