"""The sections of ``newsletter.toml``, one frozen model each, and durations.

Split from :mod:`pipeline.config`, which assembles them into ``Settings`` and
reads the file and the environment; import them from there.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
)

from pipeline.errors import ConfigError
from pipeline.schedule.crontab import cron_trigger

# Each provider owns its section's model (and registers it in
# pipeline.sending.transports.TRANSPORTS); Settings keeps them as typed fields
# so `settings.smtp.host` stays checked by mypy and `[smtp]` validates as before.


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ClinicSettings(_Section):
    name: str = Field(min_length=1)
    website: str | None = None
    postal_address: str = Field(min_length=1)
    logo_url: str | None = None
    booking_url: str | None = None
    booking_label: str = "Book an appointment"
    brand_color: str = Field(default="#2f6f62", pattern=r"^#[0-9a-fA-F]{6}$")


class EmailSettings(_Section):
    from_email: str = Field(min_length=3)
    from_name: str | None = None
    reply_to: str | None = None
    #: Used in "Hi {first_name}," when a subscriber has no first name.
    first_name_fallback: str = "there"
    #: DKIM selectors preflight looks up under ``_domainkey.{from domain}``;
    #: empty means the transport's own (SendGrid: s1, s2).
    dkim_selectors: tuple[str, ...] = ()


class WebSettings(_Section):
    base_url: str = "http://127.0.0.1:8000"
    #: How long a subscription confirmation link works.
    confirm_max_age_hours: int = Field(default=48, ge=1, le=24 * 30)
    #: Sign-up form posts per client address: a burst, refilled evenly over an hour.
    subscribe_burst: int = Field(default=5, ge=1)
    subscribe_per_hour: int = Field(default=20, ge=1)
    #: SendGrid webhook requests whose signed timestamp is further from now are refused.
    webhook_max_age_seconds: int = Field(default=300, ge=10, le=86_400)
    #: Reverse proxies (IPs or CIDR networks) whose X-Forwarded-For / X-Forwarded-Proto
    #: `serve` believes; empty (the default) means proxy headers are ignored.
    trusted_proxies: tuple[str, ...] = ()
    #: Open connections plus requests in progress `serve` accepts; beyond it, 503.
    max_connections: int = Field(default=100, ge=1, le=100_000)
    #: A dashboard (/admin) session ends after this many minutes without a request.
    admin_session_minutes: int = Field(default=30, ge=1, le=24 * 60)

    @field_validator("base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("trusted_proxies")
    @classmethod
    def _ip_networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        # Normalized to networks ("10.0.0.1/8" -> "10.0.0.0/8", "::1" -> "::1/128"): uvicorn
        # silently treats a network with host bits set as a literal string.
        networks = []
        for entry in value:
            try:
                networks.append(str(ipaddress.ip_network(entry.strip(), strict=False)))
            except ValueError:
                raise ValueError(f"{entry!r} is not an IP address or CIDR network") from None
        return tuple(networks)


class ScheduleSettings(_Section):
    cron: str = "0 9 * * tue"
    timezone: str = "UTC"
    #: A firing missed by less than this (downtime, a pause) still runs once; older ones
    #: are skipped and logged. "6h", "90m", "1h30m", "45s", or a number of minutes.
    catch_up_grace: timedelta = timedelta(hours=6)

    @field_validator("cron")
    @classmethod
    def _crontab(cls, value: str) -> str:
        # Parsed here, not first at the scheduler's firing: `check` and every
        # service refuse a cron APScheduler would refuse (the zone does not matter).
        try:
            cron_trigger(value, ZoneInfo("UTC"))
        except ConfigError as exc:
            raise ValueError(str(exc).removeprefix("schedule.cron: ")) from None
        return value

    @field_validator("catch_up_grace", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        return parse_duration(value) if isinstance(value, (str, int, float)) else value

    @field_validator("catch_up_grace")
    @classmethod
    def _at_least_a_second(cls, value: timedelta) -> timedelta:
        if value < timedelta(seconds=1):
            raise ValueError("must be at least one second")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA timezone {value!r}") from exc
        return value

    @property
    def tz(self) -> ZoneInfo:
        """The clinic's timezone."""
        return ZoneInfo(self.timezone)


class SendingSettings(_Section):
    transport: str = "outbox"
    outbox_dir: Path = Path("outbox")
    batch_size: int = Field(default=1000, ge=1, le=1000)
    #: Batches one sender keeps in flight at once (each lane claims, sends and
    #: records its own). More hides network latency; a crash can leave one
    #: batch in doubt per lane. None ("auto", the default): chosen per run from
    #: the transport (see pipeline.sending.plan).
    concurrency: int | None = Field(default=None, ge=1, le=16)
    #: Sending processes (this one and forked helpers, each with ``concurrency``
    #: lanes): building personal links and bodies needs a core per process.
    #: None ("auto", the default): chosen per run from the campaign and the cores.
    processes: int | None = Field(default=None, ge=1, le=64)
    #: The automatic brake (pipeline.sending.brake): a running campaign pauses
    #: for its owner once bounces / sends, or complaints / sends, exceed these
    #: (after 50 sends). Mailbox providers throttle or block a sender well
    #: above 5% bounces or 0.1% spam reports; stopping early keeps the clinic's
    #: reputation. 1 switches a brake off.
    max_bounce_rate: float = Field(default=0.05, gt=0, le=1)
    max_complaint_rate: float = Field(default=0.001, gt=0, le=1)

    @field_validator("concurrency", "processes", mode="before")
    @classmethod
    def _auto(cls, value: object) -> object:
        return None if isinstance(value, str) and value.strip().lower() == "auto" else value


class AuthorSettings(_Section):
    bio: str | None = None
    photo_url: str | None = None


class PreflightSettings(_Section):
    """Where preflight asks DNS: the system resolver unless ``nameservers`` names others."""

    #: ``host`` or ``host:port`` entries (a split-horizon setup, or a test server).
    nameservers: tuple[str, ...] = ()
    dns_timeout: float = Field(default=3.0, gt=0)
    link_timeout: float = Field(default=5.0, gt=0)
    #: The whole link check stops after this many seconds (the rest are warned about).
    links_total_timeout: float = Field(default=30.0, gt=0)


class OwnerSettings(_Section):
    """Who hears what the scheduler is about to do and what it did (``[owner]``).

    ``email`` takes one address or a list; empty means nobody is told (nothing
    is sent, nothing recorded). ``heads_up``: how long before a scheduled send
    the owner gets its heads-up with the "Hold this send" link.
    """

    email: tuple[str, ...] = ()
    heads_up: timedelta = timedelta(hours=24)

    @field_validator("email", mode="before")
    @classmethod
    def _one_or_more(cls, value: object) -> object:
        return (value,) if isinstance(value, str) else value

    @field_validator("email")
    @classmethod
    def _addresses(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        cleaned = tuple(address.strip() for address in value)
        for address in cleaned:
            if not _OWNER_ADDRESS.fullmatch(address):
                raise ValueError(f"{address!r} is not an email address")
        return cleaned

    @field_validator("heads_up", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        return parse_duration(value) if isinstance(value, (str, int, float)) else value

    @field_validator("heads_up")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value < timedelta(minutes=1) or value > timedelta(days=14):
            raise ValueError("must be between 1m and 14 days (336h)")
        return value


#: Deliberately loose (one @, a dot in the domain, no spaces or brackets): the
#: transport refuses what is really wrong; this catches typos at `check`.
_OWNER_ADDRESS = re.compile(r"[^@\s<>,;\"']+@[^@\s<>,;\"']+\.[^@\s<>,;\"']+")


class SeriesSettings(_Section):
    """``[series.SLUG]``: how someone who joins after part 1 catches up on that series.

    ``catch_up``: whether they get the parts they missed (oldest first) at all;
    ``catch_up_every``: at most one catch-up email of this series per this long
    ("2d", "36h"); ``catch_up_limit``: at most this many parts, the most recent.
    """

    catch_up: bool = True
    catch_up_every: timedelta = timedelta(days=2)
    catch_up_limit: int = Field(default=10, ge=1, le=1000)

    @field_validator("catch_up_every", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        return parse_duration(value) if isinstance(value, (str, int, float)) else value

    @field_validator("catch_up_every")
    @classmethod
    def _at_least_a_day(cls, value: timedelta) -> timedelta:
        # The pass runs once a day, at the send time: less than a day means daily.
        if value < timedelta(days=1):
            raise ValueError("must be at least 1d (the catch-up pass runs once a day)")
        return value


class DatabaseSettings(_Section):
    url: str = "sqlite:///newsletter.db"


_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


def parse_duration(value: str | float) -> timedelta:
    """``"2d"``, ``"6h"``, ``"90m"``, ``"1h30m"``, ``"45s"``; a bare number means minutes."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return timedelta(minutes=value)
    text = str(value).strip().lower().replace(" ", "")
    if text.replace(".", "", 1).isdigit():
        return timedelta(minutes=float(text))
    match = _DURATION.fullmatch(text)
    if not text or match is None:
        raise ValueError(f"{value!r} is not a duration like 2d, 6h, 90m, 1h30m or 45s")
    days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
