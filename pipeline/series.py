"""Series order, previous/next links and the send queue."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class SeriesLink:
    """A link to a neighbouring article in the same series."""

    slug: str
    title: str
    url: str
    sent: bool
    planned_at: datetime | None = None


@dataclass(frozen=True)
class SeriesNav:
    """Where an article sits in its series and who its neighbours are."""

    series: str
    part: int
    position: int  # 1-based place among the series' non-draft articles
    total: int
    previous: SeriesLink | None
    next: SeriesLink | None
