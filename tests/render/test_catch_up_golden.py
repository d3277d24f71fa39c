"""Golden files for a catch-up email (HTML and text): the series seen from the reader's side.

The sample clinic has sent parts 1 and 2 of "Massage and Wellbeing" live; a
new subscriber then joins, and the daily pass on Tuesday 1 December plans
part 1 for them. Its issue, as the pass stored it, says "Part 1 of 3" and
that part 2 is "in your inbox on Thu 3 Dec" (their own next date, two days
on), where the live email announced part 2 as coming on its own date.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from pipeline.config import load_settings
from pipeline.newsletter import Newsletter
from pipeline.render import Personalizer
from pipeline.schedule.catch_up_track import run_pass
from pipeline.store.catch_up import campaign_ids_by_slug
from pipeline.store.catch_up_issues import catch_up_issue
from pipeline.subscribers.commands import add_subscriber
from tests.helpers import FixedClock, copy_sample_folder

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
SYDNEY = ZoneInfo("Australia/Sydney")
PART_1 = "massage-and-mental-health"
PART_2 = "hip-pain-massage-therapy"


@pytest.mark.parametrize("part", ["html", "txt"])
def test_catch_up_email_matches_golden(tmp_path: Path, part: str) -> None:
    config = copy_sample_folder(tmp_path / "clinic")
    settings = load_settings(config, environ={"NEWSLETTER_SECRET_KEY": "golden"})
    clock = FixedClock(datetime(2026, 11, 24, 9, 0, tzinfo=SYDNEY))
    newsletter = Newsletter(settings, clock=clock)
    try:
        newsletter.plan(PART_1)  # both parts went out live (to nobody yet: the list was empty)
        newsletter.plan(PART_2)
        add_subscriber(newsletter.sessions, "late@example.com")
        clock.now = datetime(2026, 12, 1, 9, 0, tzinfo=SYDNEY)
        report = run_pass(newsletter, send=lambda slug: None)
        assert [(p.slug, p.emails) for p in report.parts] == [(PART_1, ("late@example.com",))]
        campaign_id = campaign_ids_by_slug(newsletter.sessions)[PART_1]
        issue = catch_up_issue(newsletter.sessions, campaign_id, clock.now)
        assert issue is not None
        values = newsletter.sample_recipient("subscriber@example.com").values()
        personal = Personalizer(issue)
        got = personal.html(values) if part == "html" else personal.text(values)
    finally:
        newsletter.close()
    assert "Part 1 of 3 in Massage and Wellbeing" in got
    assert "in your inbox on Thu 3 Dec" in got and "%%" not in got
    golden = GOLDEN / f"catch-up.{part}"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        golden.write_text(got, encoding="utf-8")
    assert got == golden.read_text(encoding="utf-8"), (
        f"{golden.name} differs; if intended, regenerate with UPDATE_GOLDEN=1"
    )
