"""Addresses and helpers the hardening tests share."""

from __future__ import annotations

from typing import Any

SAM = "sam.nguyen@example.com"  # active in the sample list
PRIYA = "priya.sharma@example.com"
HOSTILE = "<img src=x onerror=alert(1)>"


def _web_settings(**values: str) -> Any:
    """An edit_settings function adding lines under ``[web]``."""
    lines = "".join(f"{key} = {value}\n" for key, value in values.items())
    return lambda text: text.replace("[web]\n", f"[web]\n{lines}", 1)
