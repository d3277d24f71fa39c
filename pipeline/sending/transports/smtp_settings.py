"""The ``[smtp]`` section of ``newsletter.toml``, owned by the SMTP transport.

A module of its own (not ``smtp.py``) because :mod:`pipeline.config` imports it
to type ``Settings.smtp``, and ``smtp.py`` imports the renderer, which imports
the settings: this module needs nothing but pydantic, so no cycle can form.
The password comes from the environment (``NEWSLETTER_SMTP_PASSWORD``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class SmtpSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = "localhost"
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    timeout: float = Field(default=30.0, gt=0)
    max_retries: int = Field(default=3, ge=0, le=20)
    #: Connections a send opens at once, over all its lanes and processes when
    #: ``[sending]`` leaves them on auto: mail servers limit connections per client.
    max_connections: int = Field(default=3, ge=1, le=100)
