"""Typed, frozen settings read from ``newsletter.toml`` plus the environment.

Paths in the file are relative to the file. Secrets come only from the
environment and are held as :class:`pydantic.SecretStr`, so printing a settings
object never shows them.
"""

from __future__ import annotations

import os
import re
import secrets
import tomllib
from collections.abc import Mapping
from pathlib import Path

from pydantic import Field, SecretStr, ValidationError

from pipeline.bounces.settings import BouncesSettings
from pipeline.config_lines import setting_line
from pipeline.config_sections import (
    AuthorSettings,
    ClinicSettings,
    DatabaseSettings,
    EmailSettings,
    OwnerSettings,
    PreflightSettings,
    ScheduleSettings,
    SendingSettings,
    SeriesSettings,
    WebSettings,
    _Section,
    parse_duration,
)
from pipeline.errors import ConfigError

# Each provider owns its section's model (and registers it in
# pipeline.sending.transports.TRANSPORTS); Settings keeps them as typed fields
# so `settings.smtp.host` stays checked by mypy and `[smtp]` validates as before.
from pipeline.sending.transports.sendgrid_settings import SendGridSettings
from pipeline.sending.transports.smtp_settings import SmtpSettings

#: The section models live in pipeline.config_sections; callers import them from here.
__all__ = [
    "CONFIG_FILE_NAME",
    "SECRET_FILE_NAME",
    "AuthorSettings",
    "BouncesSettings",
    "ClinicSettings",
    "DatabaseSettings",
    "EmailSettings",
    "OwnerSettings",
    "PreflightSettings",
    "ScheduleSettings",
    "SendGridSettings",
    "SendingSettings",
    "SeriesSettings",
    "Settings",
    "SmtpSettings",
    "WebSettings",
    "find_config",
    "folder_secret",
    "load_settings",
    "parse_duration",
    "resolve_sqlite_url",
]

CONFIG_FILE_NAME = "newsletter.toml"
#: Overrides ``[web] base_url`` (as NEWSLETTER_DATABASE_URL overrides ``[database] url``).
BASE_URL_ENV = "NEWSLETTER_BASE_URL"
#: Where a folder keeps its generated secret key when NEWSLETTER_SECRET_KEY is unset.
SECRET_FILE_NAME = ".newsletter-secret"


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
    authors: dict[str, AuthorSettings] = Field(default_factory=dict)
    database: DatabaseSettings = DatabaseSettings()
    preflight: PreflightSettings = PreflightSettings()
    owner: OwnerSettings = OwnerSettings()
    bounces: BouncesSettings = BouncesSettings()
    #: ``[series.SLUG]`` tables; a series without one gets the defaults.
    series: dict[str, SeriesSettings] = Field(default_factory=dict)
    secret_key: SecretStr
    smtp_password: SecretStr | None = None
    sendgrid_api_key: SecretStr | None = None
    sendgrid_api_host: str = "https://api.sendgrid.com"
    sendgrid_webhook_public_key: SecretStr | None = None
    imap_password: SecretStr | None = None

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
        "imap_password": env.get("NEWSLETTER_IMAP_PASSWORD"),
    }
    raw.update({key: value for key, value in secrets.items() if value})
    if "secret_key" not in raw:
        raw["secret_key"] = folder_secret(raw["root"])
    if env.get("NEWSLETTER_DATABASE_URL"):
        raw.setdefault("database", {})
        raw["database"] = {**raw["database"], "url": env["NEWSLETTER_DATABASE_URL"]}
    if env.get(BASE_URL_ENV):
        # Where the web app is reached, when the file's is not (`demo --port` sets it
        # for the scheduler's jobs, which read the file again at every run).
        raw.setdefault("web", {})
        raw["web"] = {**raw["web"], "base_url": env[BASE_URL_ENV]}
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        # input values are left out on purpose: they could be secrets
        where = _series_line(path, first["loc"])
        if tuple(first["loc"][:2]) == ("web", "base_url") and env.get(BASE_URL_ENV):
            where = BASE_URL_ENV  # the value came from the environment, not the file
        elif where == str(path):
            where = setting_line(path, first["loc"])
        message = str(first["msg"]).removeprefix("Value error, ")
        raise ConfigError(f"{where}: {field}: {message}{more}") from None


def _series_line(path: Path, loc: tuple[int | str, ...]) -> str:
    """``path:line`` of a bad ``[series.SLUG]`` key (the owner's own tables), else ``path``."""
    if len(loc) < 2 or loc[0] != "series":
        return str(path)
    heading = re.compile(rf"\s*\[\s*series\.\"?{re.escape(str(loc[1]))}\"?\s*\]")
    key = re.compile(rf"\s*{re.escape(str(loc[2]))}\s*=") if len(loc) > 2 else None
    lines = path.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, start=1):
        if not heading.match(line):
            continue
        for offset, below in enumerate(lines[number:], start=number + 1):
            if below.lstrip().startswith("["):
                break
            if key is not None and key.match(below):
                return f"{path}:{offset}"
        return f"{path}:{number}"
    return str(path)
