"""The real scheduler service against a controlled clock: firing on time across DST,
missed firings within and beyond the catch-up grace, resuming a half-sent campaign,
picking up a one-off set while running.

APScheduler reads the real clock (its misfire check calls ``datetime.now``), so
the tests that run a real scheduler move the whole process's clock with
time-machine (``tick=True``: time then flows from the chosen moment). Everything
else passes ``now`` in. Every wait is bounded.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine

from pipeline.schedule.service import SchedulerService
from pipeline.store.models import CampaignStatus, ScheduledSendStatus
from pipeline.store.oneoffs import OneOffStore
from tests.helpers import SAMPLE_SLUG
from tests.schedule.scheduler_fixtures import (  # noqa: F401 - registers the fixtures
    config_fixture,
    log_info_fixture,
    services_fixture,
)
from tests.schedule.scheduler_helpers import (
    PART_1,
    SUBSCRIBERS,
    SYDNEY,
    _down_then_up,
    campaigns,
    messages,
    open_folder,
    outbox_files,
    set_schedule,
    start_service,
    wait_for,
)

# -- the real scheduler against a controlled clock -----------------------------------


def test_a_sunday_crontab_fires_on_sunday(
    config: Path, services: list[SchedulerService], caplog: pytest.LogCaptureFixture
) -> None:
    set_schedule(config, "0 9 * * 0")
    with time_machine.travel(datetime(2026, 11, 29, 8, 59, 58, tzinfo=SYDNEY), tick=True):
        service = start_service(config, services)
        assert wait_for(lambda: len(outbox_files(config)) == SUBSCRIBERS)
        service.stop()
    newsletter = open_folder(config)
    [campaign] = newsletter.ledger.campaigns()
    started = campaign.created_at.astimezone(SYDNEY)
    assert (started.strftime("%A %H:%M"), campaign.slug) == ("Sunday 09:00", PART_1)
    assert "firing: recurring send scheduled for 2026-11-29T09:00:00+11:00" in messages(caplog)


def test_the_stored_schedule_fires_at_nine_local_after_dst_ends(
    config: Path, services: list[SchedulerService], caplog: pytest.LogCaptureFixture
) -> None:
    with time_machine.travel(datetime(2027, 3, 31, 12, 0, tzinfo=SYDNEY), tick=True):
        service = start_service(config, services)
        assert service.next_firing() == datetime(2027, 4, 6, 9, 0, tzinfo=SYDNEY)
        service.stop()
    # A restart on the first Tuesday after clocks went back (now +10:00).
    with time_machine.travel(datetime(2027, 4, 6, 8, 59, 58, tzinfo=SYDNEY), tick=True):
        service = start_service(config, services)
        assert wait_for(lambda: len(outbox_files(config)) == SUBSCRIBERS)
        assert wait_for(lambda: service.next_firing() is not None)
        following = service.next_firing()
        service.stop()
    assert following is not None
    assert following.isoformat() == "2027-04-13T09:00:00+10:00"
    assert campaigns(config) == [PART_1]
    assert "firing: recurring send scheduled for 2027-04-06T09:00:00+10:00" in messages(caplog)


def test_a_firing_missed_within_the_grace_runs_once_after_a_restart(
    config: Path, services: list[SchedulerService], caplog: pytest.LogCaptureFixture
) -> None:
    back = datetime(2026, 12, 1, 11, 0, tzinfo=SYDNEY)  # two hours late, grace 6 h
    with time_machine.travel(back, tick=True):
        service = _down_then_up(config, services)
        assert wait_for(lambda: len(outbox_files(config)) == SUBSCRIBERS)
        assert wait_for(lambda: service.next_firing() is not None)
        following = service.next_firing()
        service.stop()
    assert campaigns(config) == [PART_1]
    assert following == datetime(2026, 12, 8, 9, 0, tzinfo=SYDNEY)
    log = messages(caplog)
    assert "missed 1 firing(s)" in log and "it runs once now" in log
    assert "firing: recurring send scheduled for 2026-12-01T09:00:00+11:00 (catching up" in log


def test_a_firing_missed_beyond_the_grace_is_skipped_and_logged(
    config: Path, services: list[SchedulerService], caplog: pytest.LogCaptureFixture
) -> None:
    back = datetime(2026, 12, 1, 16, 0, tzinfo=SYDNEY)  # seven hours late, grace 6 h
    with time_machine.travel(back, tick=True):
        service = _down_then_up(config, services)
        assert wait_for(lambda: "missed firing at" in messages(caplog))
        following = service.next_firing()
        service.stop()
    assert outbox_files(config) == [] and campaigns(config) == []
    assert following == datetime(2026, 12, 8, 9, 0, tzinfo=SYDNEY)
    log = messages(caplog)
    assert "missed firing at 2026-12-01T09:00:00+11:00: beyond the catch-up grace" in log
    assert "skipped" in log


def test_the_grace_period_comes_from_the_settings(
    config: Path, services: list[SchedulerService], caplog: pytest.LogCaptureFixture
) -> None:
    set_schedule(config, "0 9 * * tue", grace="1h")
    back = datetime(2026, 12, 1, 11, 0, tzinfo=SYDNEY)  # two hours late: beyond 1 h
    with time_machine.travel(back, tick=True):
        service = _down_then_up(config, services)
        assert wait_for(lambda: "missed firing at" in messages(caplog))
        service.stop()
    assert campaigns(config) == []


def test_several_missed_firings_coalesce_into_one_send(
    config: Path, services: list[SchedulerService], caplog: pytest.LogCaptureFixture
) -> None:
    back = datetime(2026, 12, 15, 10, 0, tzinfo=SYDNEY)  # missed 1, 8 and 15 December
    with time_machine.travel(back, tick=True):
        service = _down_then_up(config, services)
        assert wait_for(lambda: len(outbox_files(config)) == SUBSCRIBERS)
        assert wait_for(lambda: service.next_firing() is not None)
        following = service.next_firing()
        service.stop()
    assert campaigns(config) == [PART_1]  # one send, not three
    assert following == datetime(2026, 12, 22, 9, 0, tzinfo=SYDNEY)
    assert "missed 3 firing(s)" in messages(caplog)


def test_a_restart_resumes_a_campaign_left_half_sent(
    config: Path, services: list[SchedulerService], caplog: pytest.LogCaptureFixture
) -> None:
    newsletter = open_folder(config)
    campaign, _ = newsletter.plan(SAMPLE_SLUG)
    newsletter.ledger.mark_running(campaign.id, datetime.now(UTC))  # then the sender died
    service = start_service(config, services)
    assert wait_for(lambda: len(outbox_files(config)) == SUBSCRIBERS)
    service.stop()
    counts = newsletter.ledger.counts(campaign)
    assert (counts.planned, counts.sent) == (SUBSCRIBERS, SUBSCRIBERS)
    assert newsletter.ledger.get_campaign(SAMPLE_SLUG).status is CampaignStatus.DONE  # type: ignore[union-attr]
    assert "resuming an interrupted campaign" in messages(caplog)
    assert len(outbox_files(config)) == SUBSCRIBERS  # nothing sent twice


def test_a_one_off_set_while_running_is_picked_up(
    config: Path, services: list[SchedulerService]
) -> None:
    service = start_service(config, services)
    newsletter = open_folder(config)
    now = datetime.now(UTC)
    OneOffStore(newsletter.sessions).schedule(SAMPLE_SLUG, now + timedelta(seconds=1), now)
    assert wait_for(lambda: len(outbox_files(config)) == SUBSCRIBERS)
    service.stop()
    [one] = OneOffStore(newsletter.sessions).all()
    assert one.status is ScheduledSendStatus.FIRED
    assert campaigns(config) == [SAMPLE_SLUG]
