"""Import a blog's RSS or Atom feed into article files (``newsletter import-feed``).

One source (an http(s) URL or a local file) is fetched, parsed by feedparser and
turned, entry by entry, into the same ``articles/<slug>.md`` files a writer would
write by hand: front matter plus a Markdown body. Nothing a feed says reaches a
file unsanitized: the entry's HTML goes through nh3 (no script, style, iframe,
form, event handler, ``javascript:`` or ``data:`` URL; links and images made
absolute) before markdownify turns it into Markdown, and render sanitizes again.

Importing is idempotent. Each entry has a key (its guid, else its link, else a
hash of its content) written into the article's front matter (``feed_key``) and
into the database, with a hash of what the feed said (``feed_hash``): a second
import adds nothing, and an entry edited on the blog is reported as changed
(``--update`` rewrites the files not yet sent). Every bad input is one line
naming the feed or the entry, and the good entries are imported regardless.

Where things are: ``fetch`` (httpx GET or a file), ``parse`` (feedparser, entry by
entry), ``convert`` (sanitized HTML -> Markdown body), ``slugs``, ``text`` (one-line
values, URLs, hashes), ``article_files`` (front matter + body, atomic writes),
``importer`` (the run: what is new, changed or known), ``records`` (options, report,
items). The sanitizing policy is :mod:`pipeline.content.sanitize` (feed profile); the
database state is :mod:`pipeline.store.feeds`.
"""

from pipeline.feeds.convert import html_to_body, sanitize_html
from pipeline.feeds.fetch import MAX_FEED_BYTES, USER_AGENT, Fetched, fetch_url, is_url, read_file
from pipeline.feeds.importer import import_feed
from pipeline.feeds.parse import MAX_KEY_LENGTH, SUMMARY_LENGTH, entry_key, parse_feed
from pipeline.feeds.records import (
    DEFAULT_TIMEOUT,
    FeedError,
    FeedImportReport,
    FeedItem,
    ImportedArticle,
    ImportOptions,
    ParsedFeed,
    parse_since,
)
from pipeline.feeds.slugs import SLUG_LENGTH, slug_for, slugify

__all__ = [
    "DEFAULT_TIMEOUT",
    "MAX_FEED_BYTES",
    "MAX_KEY_LENGTH",
    "SLUG_LENGTH",
    "SUMMARY_LENGTH",
    "USER_AGENT",
    "FeedError",
    "FeedImportReport",
    "FeedItem",
    "Fetched",
    "ImportOptions",
    "ImportedArticle",
    "ParsedFeed",
    "entry_key",
    "fetch_url",
    "html_to_body",
    "import_feed",
    "is_url",
    "parse_feed",
    "parse_since",
    "read_file",
    "sanitize_html",
    "slug_for",
    "slugify",
]
