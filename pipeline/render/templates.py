"""Jinja2 -> MJML -> email HTML with inlined CSS: the template machinery.

The folder's own ``templates_dir`` overrides the package's design file by file. MJML
turns the filled template into email-client HTML and css-inline copies the styles
onto each element for clients that drop ``<style>``. A missing or broken template
raises :class:`TemplateError` naming the file and line.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import css_inline
import jinja2
import mjml

from pipeline.errors import TemplateError
from pipeline.sample import SAMPLE_TEMPLATES_DIR

HTML_TEMPLATE: Final = "newsletter.mjml"
TEXT_TEMPLATE: Final = "newsletter.txt"
#: The design the package ships (the sample folder's templates/, see pipeline/sample.py);
#: a folder's own ``templates_dir`` overrides it file by file.
DEFAULT_TEMPLATES_DIR: Final = SAMPLE_TEMPLATES_DIR


def _display_url(url: str) -> str:
    return re.sub(r"^https?://", "", url).rstrip("/")


def _autoescape(name: str | None) -> bool:
    # HTML-ish templates escape every value; the plain-text twin must not.
    return name is not None and name.endswith((".mjml", ".html"))


class _QuietBytecodeCache(jinja2.FileSystemBytecodeCache):
    """Compiled templates kept between commands; a cache it cannot read or write is only slower.

    Jinja compiles a template on first use in each process (about 15 ms for
    the email's two, most of a command's first render); the cache holds the
    compiled code under the source's checksum and Jinja's version, so an
    edited template is compiled again. In the user's own temporary folder
    (Jinja's default, which it checks is theirs alone).
    """

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        try:
            super().load_bytecode(bucket)
        except (OSError, EOFError, ValueError, TypeError):
            bucket.reset()  # unreadable or damaged: compiled anew, written again

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        with contextlib.suppress(OSError):  # read-only or full: the next command compiles too
            super().dump_bytecode(bucket)


@functools.lru_cache(maxsize=1)
def _bytecode_cache() -> jinja2.BytecodeCache | None:
    try:
        return _QuietBytecodeCache()
    except (OSError, RuntimeError):  # no private temporary folder to be had: no cache
        return None


@functools.lru_cache(maxsize=8)
def template_environment(templates_dir: Path) -> jinja2.Environment:
    """The Jinja2 environment for a folder's templates, built once per folder."""
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
        bytecode_cache=_bytecode_cache(),
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


def render_template(env: jinja2.Environment, name: str, context: Mapping[str, Any]) -> str:
    """Fill template ``name``; any Jinja2 failure becomes a :class:`TemplateError`."""
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


def mjml_to_html(source: str) -> str:
    """Email HTML from filled-in MJML, with the CSS inlined."""
    try:
        # fonts={}: a system font stack needs no web font, so no remote font <link>.
        email_html = mjml.mjml2html(source, disable_comments=True, fonts={})
    except ValueError as exc:
        raise TemplateError(f"{HTML_TEMPLATE}: MJML does not render: {exc}") from exc
    return _inliner().inline(email_html)
