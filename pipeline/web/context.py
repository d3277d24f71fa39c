"""What every route module of the web app shares, built once by ``create_app``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from pipeline import links
from pipeline.config import Settings
from pipeline.newsletter import Newsletter
from pipeline.tokens import TokenSigner
from pipeline.web.confirm_sender import ConfirmationSender
from pipeline.web.pages import Pages
from pipeline.web.security import CsrfGuard, RateLimiter


@dataclass(frozen=True)
class WebContext:
    """The newsletter plus the web app's own helpers."""

    newsletter: Newsletter
    pages: Pages
    csrf: CsrfGuard
    #: Sign-up form posts per client address.
    limiter: RateLimiter
    #: Issues and checks ``confirm`` tokens on the newsletter's clock (expiry is testable).
    signer: TokenSigner
    #: Sends queued confirmation emails (woken by the form; a thread while serving).
    confirmations: ConfirmationSender

    @property
    def settings(self) -> Settings:
        """The newsletter's settings."""
        return self.newsletter.settings

    @property
    def clock(self) -> Callable[[], datetime]:
        """The newsletter's clock (tests inject one)."""
        return self.newsletter.clock

    def url(self, path: str) -> str:
        """An absolute URL under ``[web] base_url`` (never built from the Host header)."""
        return f"{self.settings.web.base_url}{path}"

    def unsubscribe_url(self, subscriber_id: int, email: str) -> str:
        """A subscriber's personal one-click unsubscribe link."""
        token = self.signer.issue("unsubscribe", subscriber_id, email)
        return links.unsubscribe_url(self.settings.web.base_url, token)
