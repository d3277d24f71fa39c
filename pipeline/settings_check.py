"""Settings only a service finds out about: checked by ``check`` and at every service start.

The model in :mod:`pipeline.config` already refuses a bad cron, timezone,
grace, ``[owner]`` or ``[bounces]`` while loading. What it cannot see on its
own is whether the transport can be built (an unknown ``[sending] transport``,
a SendGrid key or SMTP password missing from the environment) and whether the
bounce mailbox can be reached as configured. ``check``, ``scheduler.py``,
``newsletter worker`` and ``newsletter serve`` all call :func:`check_services`
so a broken setting is one line and exit status 1 before anything starts,
never a service retrying forever.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from pipeline.config import Settings
from pipeline.config_lines import setting_line
from pipeline.errors import ConfigError

#: "section.key: message" at the start of a ConfigError names the setting.
_FIELD = re.compile(r"^([a-z_]+)\.([a-z_]+)\b")


def _located(path: Path, message: str) -> ConfigError:
    match = _FIELD.match(message)
    where = setting_line(path, match.groups()) if match else str(path)
    return ConfigError(f"{where}: {message}")


def check_services(settings: Settings, path: Path) -> None:
    """Raise :class:`ConfigError` (``path:line: message``) for the first broken setting."""
    # Imported here: the transports import the renderer, which imports the settings.
    from pipeline.sending.transports import make_transport

    try:
        # Building connects nothing; it is where a missing secret or bad name is refused.
        make_transport(settings, lambda: datetime.now(UTC)).close()
    except ConfigError as exc:
        raise _located(path, str(exc)) from None
    bounces = settings.bounces
    if bounces.maildir is not None:
        folder = settings.root / bounces.maildir
        if not (folder / "new").is_dir() or not (folder / "cur").is_dir():
            raise _located(
                path, f"bounces.maildir: {folder} is not a Maildir (no new/ and cur/ folders)"
            )
    password = settings.imap_password
    if bounces.imap_host is not None and not (password and password.get_secret_value()):
        raise _located(path, "bounces.imap_host is set but NEWSLETTER_IMAP_PASSWORD is not set")
