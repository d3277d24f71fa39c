"""Fixtures of the rendering tests: the repository's settings, the sample article and its issue.

Module-scoped: each test module renders the sample issue once.
"""

from __future__ import annotations

import pytest

from pipeline.config import Settings, load_settings
from pipeline.content.articles import Article, read_article
from pipeline.render import RenderedIssue, render_issue
from tests.render.render_helpers import ARCHIVE_URL, ROOT, SAMPLE_NAV, SYDNEY


@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_settings(ROOT / "newsletter.toml", environ={})


@pytest.fixture(scope="module")
def sample() -> Article:
    return read_article(ROOT / "articles" / "hip-pain-massage-therapy.md", SYDNEY)


@pytest.fixture(scope="module")
def issue(sample: Article, settings: Settings) -> RenderedIssue:
    return render_issue(sample, SAMPLE_NAV, settings, archive_url=ARCHIVE_URL)
