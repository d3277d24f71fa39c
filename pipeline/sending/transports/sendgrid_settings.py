"""The ``[sendgrid]`` section of ``newsletter.toml``, owned by the SendGrid transport.

A module of its own (not ``sendgrid.py``) because :mod:`pipeline.config` imports
it to type ``Settings.sendgrid``, and ``sendgrid.py`` imports the renderer and
the SendGrid client: this module needs nothing but pydantic, so loading
settings stays cheap and no import cycle can form.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class SendGridSettings(BaseModel):
    """SendGrid options; the API key and host come from the environment."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sandbox_mode: bool = False
    categories: tuple[str, ...] = ("newsletter",)
    timeout: float = Field(default=30.0, gt=0)
    max_retries: int = Field(default=5, ge=0, le=20)
    #: Cap on one 429 wait, so a bad X-RateLimit-Reset cannot park a send for hours.
    max_rate_limit_wait: float = Field(default=300.0, gt=0)
    #: The return-path (envelope sender) subdomain SendGrid's domain authentication
    #: set up, such as ``em1234.example.com``; preflight checks SPF there.
    return_path_domain: str | None = None
