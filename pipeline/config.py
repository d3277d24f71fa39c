"""Typed, frozen settings read from ``newsletter.toml`` plus the environment.

Paths in the file are relative to the file. Secrets come only from the
environment and are held as :class:`pydantic.SecretStr`, so printing a settings
object never shows them.
"""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
import tomllib
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)

from pipeline.errors import ConfigError

# Each provider owns its section's model (and registers it in
# pipeline.sending.transports.TRANSPORTS); Settings keeps them as typed fields
# so `settings.smtp.host` stays checked by mypy and `[smtp]` validates as before.
from pipeline.sending.transports.sendgrid_settings import SendGridSettings
from pipeline.sending.transports.smtp_settings import SmtpSettings

CONFIG_FILE_NAME = "newsletter.toml"
#: Where a folder keeps its generated secret key when NEWSLETTER_SECRET_KEY is unset.
SECRET_FILE_NAME = ".newsletter-secret"


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
    #: batch in doubt per lane.
    concurrency: int = Field(default=1, ge=1, le=16)
    #: Sending processes (this one and forked helpers, each with ``concurrency``
    #: lanes): building personal links and bodies needs a core per process.
    processes: int = Field(default=1, ge=1, le=64)


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


class DatabaseSettings(_Section):
    url: str = "sqlite:///newsletter.db"


class Settings(_Section):
    """Everything the pipeline knows about one newsletter folder."""

    root: Path = Path(".")
    articles_dir: Path = Path("articles")
    templates_dir: Path = Path("templates")
    clinic: ClinicSettings
    email: EmailSettings
    web: WebSettings = WebSettings()
    schedule: ScheduleSettings = ScheduleSettings()
    sending: SendingSettings = SendingSettings()
    smtp: SmtpSettings = SmtpSettings()
    sendgrid: SendGridSettings = SendGridSettings()
    authors: dict[str, AuthorSettings] = {}
    database: DatabaseSettings = DatabaseSettings()
    preflight: PreflightSettings = PreflightSettings()
    secret_key: SecretStr
    smtp_password: SecretStr | None = None
    sendgrid_api_key: SecretStr | None = None
    sendgrid_api_host: str = "https://api.sendgrid.com"
    sendgrid_webhook_public_key: SecretStr | None = None

    @property
    def database_url(self) -> str:
        """The database URL, with a relative SQLite path made absolute to the folder."""
        return resolve_sqlite_url(self.database.url, self.root)

    @property
    def outbox_path(self) -> Path:
        """Where the outbox transport writes messages."""
        return self.root / self.sending.outbox_dir

    @property
    def articles_path(self) -> Path:
        """The article queue folder."""
        return self.root / self.articles_dir

    @property
    def templates_path(self) -> Path:
        """The folder's own templates (may be absent: the package copy is used)."""
        return self.root / self.templates_dir


_DURATION = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


def parse_duration(value: str | float) -> timedelta:
    """``"6h"``, ``"90m"``, ``"1h30m"``, ``"45s"``; a bare number means minutes."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return timedelta(minutes=value)
    text = str(value).strip().lower().replace(" ", "")
    if text.replace(".", "", 1).isdigit():
        return timedelta(minutes=float(text))
    match = _DURATION.fullmatch(text)
    if not text or match is None:
        raise ValueError(f"{value!r} is not a duration like 6h, 90m, 1h30m or 45s")
    hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return timedelta(hours=hours, minutes=minutes, seconds=seconds)


def resolve_sqlite_url(url: str, root: Path) -> str:
    """Make ``sqlite:///relative.db`` relative to the settings file, not the cwd."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/"):
        rest = url[len(prefix) :]
        if rest and rest != ":memory:":
            return prefix + str((root / rest).resolve())
    return url


def folder_secret(root: Path) -> str:
    """The folder's own random secret key, created on first use (mode 0600).

    A published default key would let anyone forge unsubscribe links, so a
    folder without NEWSLETTER_SECRET_KEY gets a key of its own instead.
    """
    path = root / SECRET_FILE_NAME
    try:
        existing = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        existing = ""
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the secret key: {exc.strerror}") from None
    if existing:
        return existing
    key = secrets.token_urlsafe(32)
    temp = path.with_name(f"{SECRET_FILE_NAME}.{os.getpid()}.tmp")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(key + "\n")
        # link() publishes the complete file or fails if another process won.
        os.link(temp, path)
    except FileExistsError:
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(
            f"{path}: cannot create a secret key ({exc.strerror}); set NEWSLETTER_SECRET_KEY"
        ) from None
    finally:
        temp.unlink(missing_ok=True)
    return key


def find_config(explicit: Path | None, environ: Mapping[str, str] | None = None) -> Path:
    """Locate the settings file: ``--config``, then NEWSLETTER_CONFIG, then ./newsletter.toml."""
    env = os.environ if environ is None else environ
    if explicit is not None:
        return explicit
    if env.get("NEWSLETTER_CONFIG"):
        return Path(env["NEWSLETTER_CONFIG"])
    return Path(CONFIG_FILE_NAME)


def load_settings(path: Path, environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate settings; raise :class:`ConfigError` naming file and field."""
    env = os.environ if environ is None else environ
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(
            f"{path}: settings file not found (use --config PATH or NEWSLETTER_CONFIG)"
        ) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from exc
    raw["root"] = path.resolve().parent
    secrets = {
        "secret_key": env.get("NEWSLETTER_SECRET_KEY"),
        "smtp_password": env.get("NEWSLETTER_SMTP_PASSWORD"),
        "sendgrid_api_key": env.get("SENDGRID_API_KEY"),
        "sendgrid_api_host": env.get("SENDGRID_API_HOST"),
        "sendgrid_webhook_public_key": env.get("SENDGRID_WEBHOOK_PUBLIC_KEY"),
    }
    raw.update({key: value for key, value in secrets.items() if value})
    if "secret_key" not in raw:
        raw["secret_key"] = folder_secret(raw["root"])
    if env.get("NEWSLETTER_DATABASE_URL"):
        raw.setdefault("database", {})
        raw["database"] = {**raw["database"], "url": env["NEWSLETTER_DATABASE_URL"]}
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        # input values are left out on purpose: they could be secrets
        raise ConfigError(f"{path}: {field}: {first['msg']}{more}") from None
