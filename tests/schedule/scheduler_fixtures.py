"""Fixtures of the scheduler tests, imported by each module that uses them.

Not in a conftest.py: test_catch_up.py has a ``config`` fixture of its own and
test_scheduler_retry.py its own ``services`` and ``_log_info``, and an autouse
``_log_info`` in a conftest.py would change the log level for every module in this folder.
Registered under their fixture names; import the ``*_fixture`` functions.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.schedule.service import SchedulerService
from tests.schedule.scheduler_helpers import sample_folder_with_subscribers


@pytest.fixture(name="config")
def config_fixture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A sample folder with its five subscribers imported; returns its settings file."""
    return sample_folder_with_subscribers(tmp_path, monkeypatch)


@pytest.fixture(name="services")
def services_fixture() -> Iterator[list[SchedulerService]]:
    """Services a test started; any still running are stopped at the end."""
    started: list[SchedulerService] = []
    yield started
    for service in started:
        if service._thread.is_alive():
            service.stop(wait=True)


@pytest.fixture(name="_log_info", autouse=True)
def log_info_fixture(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="pipeline.scheduler")
