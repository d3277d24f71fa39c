"""The automatic brake: a running campaign with too many bounces or complaints pauses.

Mailbox providers judge a sender by how often its mail bounces or is reported
as spam; a list gone stale can cost the clinic its reputation within one
campaign. So while a campaign runs, after each recorded batch, the runner asks
:func:`decide` whether to stop. Pure: counts in, decision out (the counting
SQL is :mod:`pipeline.store.brake`).

* A *send* is a row the transport was asked to deliver and that ended
  (``sent``, ``failed`` or ``uncertain``; not pending, in flight or suppressed).
* A *bounce* is a subscriber this campaign's rows marked ``bounced`` (an SMTP
  permanent reply, a webhook bounce event, a delivery status notification); a
  *complaint* one now ``complained`` (a spam report).
* Nothing is judged before :data:`MIN_SENDS` sends: two bounces in the first
  ten say little. Nothing trips when nothing is left pending: there is no row
  left to hold back, and the receipt tells the owner the numbers anyway.

The owner's answer (``send SLUG --yes``, ``schedule resume``) resumes the
campaign *after a look*: the numbers at that moment become the brake's
baseline, and from then on it judges only what came after (at least
:data:`MIN_SENDS` new sends again). So a resume never trips again on the
numbers the owner has seen, while a fresh run of bounces still stops it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy.orm import Session, sessionmaker

from pipeline.config_sections import SendingSettings
from pipeline.store.brake import BRAKE_REASON, BrakeStore

#: Sends before the brake judges anything.
MIN_SENDS = 50


@dataclass(frozen=True)
class BrakeCounts:
    """One campaign's numbers, as the store counts them (or a baseline's)."""

    sends: int
    bounced: int
    complained: int
    pending: int = 0

    def since(self, baseline: BrakeCounts | None) -> BrakeCounts:
        """The numbers after ``baseline`` (what the owner saw when resuming)."""
        if baseline is None:
            return self
        return BrakeCounts(
            sends=self.sends - baseline.sends,
            bounced=max(self.bounced - baseline.bounced, 0),
            complained=max(self.complained - baseline.complained, 0),
            pending=self.pending,
        )


@dataclass(frozen=True)
class BrakeLimits:
    """``[sending] max_bounce_rate`` and ``max_complaint_rate``."""

    max_bounce_rate: float
    max_complaint_rate: float


@dataclass(frozen=True)
class BrakeTrip:
    """Why the brake stopped a campaign, with the numbers the owner is shown."""

    what: str  # "bounces" or "complaints"
    count: int
    sends: int
    limit: float

    @property
    def rate(self) -> float:
        """``count / sends``."""
        return self.count / self.sends

    @property
    def reason(self) -> str:
        """One line for ``status``, the log and the owner's alert."""
        return (
            f"{BRAKE_REASON} {self.count} {self.what} in {self.sends} sends"
            f" ({self.rate:.1%}, above the limit of {self.limit:.1%});"
            " check the list, then resume it"
        )


def is_brake(reason: str) -> bool:
    """Whether a stop's reason is the brake's."""
    return reason.startswith(BRAKE_REASON)


#: After the first judgement, the brake counts at most this often (seconds).
CHECK_EVERY = 1.0


def decide(
    counts: BrakeCounts, limits: BrakeLimits, baseline: BrakeCounts | None = None
) -> BrakeTrip | None:
    """Whether the campaign must stop now; None to carry on."""
    judged = counts.since(baseline)
    if counts.pending == 0 or judged.sends < MIN_SENDS:
        return None
    if judged.bounced / judged.sends > limits.max_bounce_rate:
        return BrakeTrip("bounces", judged.bounced, judged.sends, limits.max_bounce_rate)
    if judged.complained / judged.sends > limits.max_complaint_rate:
        return BrakeTrip("complaints", judged.complained, judged.sends, limits.max_complaint_rate)
    return None


class BrakeReadings(Protocol):
    """What the brake reads and writes (:class:`pipeline.store.brake.BrakeStore`)."""

    def counts(self, campaign_id: int) -> tuple[int, int, int, int]: ...
    def troubles(self, campaign_id: int) -> tuple[int, int]: ...
    def baseline(self, campaign_id: int) -> tuple[int, int, int] | None: ...
    def release(self, now: datetime, campaign_id: int | None = None) -> int: ...


class Brake:
    """What the runner calls after each recorded batch: the reason to stop, or None.

    It applies :func:`decide` to what ``store`` counts; the owner's answer
    (:meth:`release`) records the baseline there.
    """

    def __init__(self, limits: BrakeLimits, store: BrakeReadings) -> None:
        self._limits = limits
        self._store = store
        self._lock = threading.Lock()
        # Per campaign: when the next count is due (monotonic), once one was judged.
        self._next_check: dict[int, float] = {}

    @classmethod
    def of(cls, sending: SendingSettings, sessions: sessionmaker[Session]) -> Brake:
        """The brake ``[sending]`` asks for, on the folder's database."""
        limits = BrakeLimits(sending.max_bounce_rate, sending.max_complaint_rate)
        return cls(limits, BrakeStore(sessions))

    def __call__(self, campaign_id: int) -> str | None:
        """After a batch of ``campaign_id`` is recorded: why to stop, if at all.

        Counting the sends reads every row of the campaign, so it is paced:
        after each batch until there are enough sends to judge
        (:data:`MIN_SENDS`), so the first judgement comes as early as the
        rule allows, then at most every :data:`CHECK_EVERY` seconds (on the
        monotonic clock: this is pacing, not the run's time). And it is
        skipped while no bounce or complaint is new since the baseline (an
        index lookup of the few people concerned): without one, no rate is
        above any limit. A healthy 100,000-row send never counts its rows.
        """
        with self._lock:
            due = self._next_check.get(campaign_id, 0.0)
            now = time.monotonic()
            if now < due:
                return None
        bounced, complained = self._store.troubles(campaign_id)
        if bounced == complained == 0:
            return None  # the usual case, and no rate can be above its limit
        base = self._store.baseline(campaign_id)
        baseline = BrakeCounts(*base) if base is not None else None
        seen = baseline or BrakeCounts(0, 0, 0)
        if bounced <= seen.bounced and complained <= seen.complained:
            return None  # nothing new since the baseline: no rate is above its limit
        counts = BrakeCounts(*self._store.counts(campaign_id))
        if counts.since(baseline).sends >= MIN_SENDS:
            with self._lock:
                self._next_check[campaign_id] = time.monotonic() + CHECK_EVERY
        trip = decide(counts, self._limits, baseline)
        return trip.reason if trip is not None else None

    def release(self, now: datetime, campaign_id: int | None = None) -> int:
        """The owner looked: a brake stop's numbers now are its baseline (one campaign or all)."""
        return self._store.release(now, campaign_id)
