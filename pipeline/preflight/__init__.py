"""Preflight: will this email reach the inbox, and does every link work?

``newsletter preflight``, ``send`` and each scheduled firing run the same
checks (see :func:`run_preflight`): the sender domain's DNS, the web side, the
rendered email and its links. Only a ``fail`` blocks a send.

``run_preflight`` and ``clear_cache`` are loaded on first use: every
``newsletter`` command imports this package (the CLI registers ``preflight``),
and their modules import dnspython and checkdmarc, ~0.5 s of start-up that
``subscribers import`` and the rest do not need.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pipeline.preflight.report import Check, PreflightReport, Status

if TYPE_CHECKING:
    from pipeline.preflight.dns import clear_cache
    from pipeline.preflight.run import run_preflight

__all__ = ["Check", "PreflightReport", "Status", "clear_cache", "run_preflight"]


def __getattr__(name: str) -> Any:
    if name == "run_preflight":
        from pipeline.preflight.run import run_preflight

        return run_preflight
    if name == "clear_cache":
        from pipeline.preflight.dns import clear_cache

        return clear_cache
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
