"""A long run of suppressed rows (people who left after planning) does not end a lane."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import update

from pipeline.newsletter import Newsletter
from pipeline.store.models import Subscriber, SubscriberStatus
from pipeline.subscribers import import_csv
from tests.helpers import SAMPLE_SLUG

# -- point 8: a long run of suppressed rows does not end a lane -----------------------


def test_a_long_run_of_people_who_left_does_not_end_the_lane(
    newsletter: Newsletter, tmp_path: Path
) -> None:
    audience = tmp_path / "more.csv"
    gone = [f"gone{i:02d}@example.com" for i in range(50)]
    staying = [f"stay{i}@example.com" for i in range(3)]
    audience.write_text("email\n" + "\n".join(gone + staying) + "\n", encoding="utf-8")
    import_csv(newsletter.sessions, audience)
    newsletter.plan(SAMPLE_SLUG)
    # They left after planning, by a path that does not touch the ledger (a
    # provider's webhook, say): only the claim notices, batch by batch.
    with newsletter.sessions.begin() as session:
        session.execute(
            update(Subscriber)
            .where(Subscriber.email.not_in(staying))
            .values(status=SubscriberStatus.UNSUBSCRIBED)
        )
    sending = newsletter.settings.sending.model_copy(update={"batch_size": 2})
    newsletter.settings = newsletter.settings.model_copy(update={"sending": sending})
    report = newsletter.send(SAMPLE_SLUG)
    c = report.counts
    assert (c.sent, c.suppressed, c.pending, c.sending) == (3, 55, 0, 0)
    assert report.complete
    names = sorted(p.name for p in (newsletter.settings.outbox_path / SAMPLE_SLUG).glob("*.eml"))
    assert len(names) == 3 and all("stay" in n for n in names)
