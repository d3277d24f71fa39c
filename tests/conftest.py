"""Shared test set-up: hypothesis profiles and small fixtures."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# CI runs derandomized so a property test can never be flaky between runs.
settings.register_profile(
    "ci", derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# Database fixtures (`database_url`, `postgres_server`) live beside the tests.
pytest_plugins = ["tests.databases", "tests.web_fixtures"]
