"""Settings: required fields named, secrets from the environment only."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from pipeline.config import SECRET_FILE_NAME, load_settings
from pipeline.errors import ConfigError
from tests.helpers import copy_sample_folder


def test_sample_settings_resolve_paths_relative_to_the_file(tmp_path: Path) -> None:
    config = copy_sample_folder(tmp_path / "clinic")
    settings = load_settings(config, environ={})
    assert settings.articles_path == tmp_path / "clinic" / "articles"
    assert settings.database_url == f"sqlite:///{(tmp_path / 'clinic' / 'newsletter.db')}"
    assert settings.schedule.tz.key == "Australia/Sydney"


def test_missing_required_field_names_file_and_field(tmp_path: Path) -> None:
    config = tmp_path / "newsletter.toml"
    config.write_text('[clinic]\nname = "X"\n[email]\nfrom_email = "a@b.c"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"newsletter\.toml: clinic\.postal_address"):
        load_settings(config, environ={"NEWSLETTER_SECRET_KEY": "k"})


def test_bad_toml_and_unknown_timezone(tmp_path: Path) -> None:
    config = tmp_path / "newsletter.toml"
    config.write_text("[clinic\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_settings(config, environ={})
    config.write_text(
        '[clinic]\nname="X"\npostal_address="Y"\n[email]\nfrom_email="a@b.c"\n'
        '[schedule]\ntimezone="Mars/Olympus"\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match=r"schedule\.timezone"):
        load_settings(config, environ={"NEWSLETTER_SECRET_KEY": "k"})


def test_secret_key_comes_from_env_or_a_generated_private_file(tmp_path: Path) -> None:
    config = copy_sample_folder(tmp_path / "clinic")
    from_env = load_settings(config, environ={"NEWSLETTER_SECRET_KEY": "s3cret-value"})
    assert from_env.secret_key.get_secret_value() == "s3cret-value"
    assert "s3cret-value" not in repr(from_env) and "s3cret-value" not in str(from_env)
    assert not (tmp_path / "clinic" / SECRET_FILE_NAME).exists()

    generated = load_settings(config, environ={}).secret_key.get_secret_value()
    key_file = tmp_path / "clinic" / SECRET_FILE_NAME
    assert len(generated) >= 40
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert load_settings(config, environ={}).secret_key.get_secret_value() == generated


def test_database_url_from_environment(tmp_path: Path) -> None:
    config = copy_sample_folder(tmp_path / "clinic")
    settings = load_settings(
        config,
        environ={"NEWSLETTER_SECRET_KEY": "k", "NEWSLETTER_DATABASE_URL": "sqlite:///other.db"},
    )
    assert settings.database_url.endswith("/clinic/other.db")


def test_lanes_and_processes_default_to_auto_and_a_number_wins(tmp_path: Path) -> None:
    config = copy_sample_folder(tmp_path / "clinic")
    env = {"NEWSLETTER_SECRET_KEY": "k"}
    settings = load_settings(config, environ=env)
    # None is "auto": pipeline.sending.plan chooses per run.
    assert (settings.sending.concurrency, settings.sending.processes) == (None, None)
    assert settings.smtp.max_connections == 3
    text = config.read_text(encoding="utf-8")
    config.write_text(
        text.replace("batch_size = 1000", 'batch_size = 1000\nconcurrency = "auto"\nprocesses = 2'),
        encoding="utf-8",
    )
    settings = load_settings(config, environ=env)
    assert (settings.sending.concurrency, settings.sending.processes) == (None, 2)
    config.write_text(text.replace("batch_size = 1000", "batch_size = 1000\nconcurrency = 0"))
    with pytest.raises(ConfigError, match="concurrency"):
        load_settings(config, environ=env)
