"""Helpers the Schedule and Campaigns tests share (fixtures: conftest.py)."""

from __future__ import annotations

import re
from html import unescape

import httpx
from sqlalchemy import select

from pipeline.newsletter import Newsletter
from pipeline.store.models import Subscriber


def _active(newsletter: Newsletter) -> int:
    with newsletter.sessions() as session:
        return len(session.scalars(select(Subscriber).where(Subscriber.status == "active")).all())


def _text(page: httpx.Response) -> str:
    """The page's text with entities undone and whitespace folded, as a reader sees it."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", page.text)).split())
