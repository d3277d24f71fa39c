"""The errors of the subscriber list: a CSV that cannot be imported, a request refused.

All derive from :class:`~pipeline.errors.PipelineError` (and ``ValueError``),
so the CLI reports them as one line and exit code 1.
"""

from __future__ import annotations

from pipeline.errors import PipelineError


class CsvError(PipelineError, ValueError):
    """A subscriber CSV cannot be imported at all (missing, unreadable, no ``email`` column)."""


class SubscriberError(PipelineError, ValueError):
    """A request about one subscriber cannot be carried out."""


class SubscriberLeftError(SubscriberError):
    """The address left the list; only the person can subscribe it again (consent)."""


class SubscriberErasedError(SubscriberError):
    """The address was erased at the person's request; only the person can bring it back."""
