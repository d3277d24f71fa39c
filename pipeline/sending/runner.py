"""Run a campaign in batches through a transport, keeping the ledger true.

Like listmonk's manager, the runner depends on two narrow interfaces: a
:class:`CampaignStore` (the ledger) and a :class:`~pipeline.sending.transports.Transport`.
Each batch is claimed (pending -> sending) before anything is handed over and
recorded (sending -> sent | failed | uncertain | suppressed, or back to
pending) right after, so the ledger is the checkpoint: a rerun carries on from
it and never sends a row twice. While a batch is out, a heartbeat renews its
lease so that nobody mistakes a slow sender for a dead one. A batch's own life
(send, record, give back) is :mod:`pipeline.sending.batch`; a row's recipient
values are :mod:`pipeline.sending.recipients`.
"""

from __future__ import annotations

import functools
import signal
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from pipeline.render import RenderedIssue
from pipeline.render.message import Sender
from pipeline.sending.batch import BatchLedger, BatchSender, CampaignMessages
from pipeline.sending.heap import HEAP as _HEAP
from pipeline.sending.lanes import LaneGate
from pipeline.sending.plan import SendPlan, plan_run
from pipeline.sending.processes import HelperProcesses, HelperStop
from pipeline.sending.recipients import RecipientLinks
from pipeline.sending.senders import is_dead_sender, sender_identity
from pipeline.sending.transports import Transport
from pipeline.store.ledger import CampaignCounts, CampaignRecord, Claim

#: How long a claim may go unrenewed before its sender is presumed dead.
DEFAULT_LEASE = timedelta(minutes=2)
#: Seconds between progress reports of a run (see ``_RunState.progress_due``).
PROGRESS_EVERY = 0.5


class CampaignStore(BatchLedger, Protocol):
    """What the runner needs from the ledger (a batch's needs, see BatchLedger, and these)."""

    def get_campaign(self, slug: str) -> CampaignRecord | None: ...
    def plan(
        self, issue: RenderedIssue, transport: str, now: datetime
    ) -> tuple[CampaignRecord, bool]: ...
    def mark_running(self, campaign_id: int, now: datetime) -> None: ...
    def claim(
        self, campaign_id: int, size: int, now: datetime, owner: str, after: int = 0
    ) -> Claim: ...
    def expire_stale(
        self, campaign_id: int, now: datetime, lease: timedelta, is_dead: Callable[[str], bool]
    ) -> int: ...
    def counts(self, campaign: CampaignRecord) -> CampaignCounts: ...
    def pending(self, campaign_id: int) -> int: ...
    def finish_if_done(self, campaign_id: int, now: datetime) -> bool: ...
    def still_wanted(self, subscriber_ids: Collection[int]) -> set[int]: ...
    def catch_up_issue(self, campaign_id: int, slot: datetime) -> RenderedIssue | None: ...


@dataclass(frozen=True)
class RunResult:
    """How a run ended: final counts and, when it stopped early, why."""

    counts: CampaignCounts
    stopped: str | None = None
    batches: int = 0
    #: Why retrying cannot help until a person acts (the provider refused the
    #: credentials or the sender); None when a later retry may succeed.
    needs_owner: str | None = None


class _RunState:
    """What the lanes of one process share: the first reason to stop, turns, batch count."""

    def __init__(self, plan: SendPlan) -> None:
        self.gate = LaneGate(plan.lanes, adaptive=plan.adaptive)
        self.lock = threading.Lock()
        self.stopped: str | None = None
        self.batches = 0
        self.error: BaseException | None = None
        #: The lanes started beside the first, and what each runs (see CampaignRunner._start_lanes).
        self.lanes: list[threading.Thread] = []
        self.lane: Callable[[], None] = lambda: None
        self._next_progress = 0.0

    def progress_due(self) -> bool:
        """Whether a lane should report progress now: at most every PROGRESS_EVERY seconds.

        Counting a campaign's rows by state reads all of them; once per batch
        would cost a million-row campaign more than its sending does. This is
        display pacing only, so it reads the monotonic clock, not the run's.
        """
        now = time.monotonic()
        with self.lock:
            if now < self._next_progress:
                return False
            self._next_progress = now + PROGRESS_EVERY
            return True

    def stop(self, reason: str) -> None:
        with self.lock:
            if self.stopped is None:
                self.stopped = reason


class CampaignRunner:
    """Sends the pending rows of one campaign, batch by batch.

    With ``concurrency`` above 1, that many lanes (each with its own transport)
    claim, send and record batches side by side, so one lane's database work
    overlaps another's wait on the network; each has at most one batch in
    flight, so a crash leaves at most one batch in doubt per lane. With
    ``processes`` above 1, the run also forks that many less one helpers
    (:mod:`pipeline.sending.processes`) with as many lanes each, so the work
    spreads over more than one core; ``before_fork`` must close what a child
    must not share (the database pool). None means auto: each run chooses
    (:func:`~pipeline.sending.plan.choose_plan`) from its transport, pending
    rows and ``cpus`` (None: the usable cores), tells ``on_plan`` before it
    sends, and auto lanes follow the answer time (:mod:`pipeline.sending.lanes`).
    """

    def __init__(
        self,
        store: CampaignStore,
        transports: Callable[[], Transport],
        *,
        sender: Sender,
        links: RecipientLinks,
        batch_size: int,
        clock: Callable[[], datetime],
        lease: timedelta = DEFAULT_LEASE,
        identity: str | None = None,
        concurrency: int | None = 1,
        processes: int | None = 1,
        before_fork: Callable[[], None] = lambda: None,
        smtp_max_connections: int = 3,
        cpus: int | None = None,
        on_plan: Callable[[SendPlan], None] | None = None,
        brake: Callable[[int], str | None] | None = None,
    ) -> None:
        self._store = store
        self._transports = transports
        self._sender = sender
        self._batches = BatchSender(store, links, clock, lease)
        self._batch_size = batch_size
        self._clock = clock
        self._lease = lease
        self._identity = identity or sender_identity()
        self._concurrency = concurrency
        self._processes = processes
        self._before_fork = before_fork
        self._smtp_max_connections = smtp_max_connections
        self._cpus = cpus
        self._on_plan = on_plan
        self._brake = brake  # campaign id -> why to stop (pipeline.sending.brake), after each batch
        self.last_plan: SendPlan | None = None  # what the last run chose
        self._stop = threading.Event()
        self._open: list[Transport] = []
        self._helpers: HelperProcesses | None = None
        self._owner_reason: str | None = None

    @property
    def stopping(self) -> bool:
        """Whether a stop was requested."""
        return self._stop.is_set()

    def request_stop(self) -> None:
        """Finish (or give back) the batches in hand, then stop. Safe from a signal handler."""
        self._stop.set()
        for transport in list(self._open):
            transport.request_stop()
        if self._helpers is not None:
            self._helpers.stop()

    def expire_stale(self, campaign: CampaignRecord) -> int:
        """Mark rows of senders that are gone (or whose lease lapsed) uncertain."""
        return self._store.expire_stale(campaign.id, self._clock(), self._lease, is_dead_sender)

    def run(
        self,
        campaign: CampaignRecord,
        progress: Callable[[CampaignCounts], None] | None = None,
    ) -> RunResult:
        """Send every pending row; return the final counts and why it stopped early."""
        with _HEAP.during_run():
            return self._run(campaign, progress)

    def _run(
        self,
        campaign: CampaignRecord,
        progress: Callable[[CampaignCounts], None] | None,
    ) -> RunResult:
        store = self._store
        self._owner_reason = None
        store.expire_stale(campaign.id, self._clock(), self._lease, is_dead_sender)
        store.mark_running(campaign.id, self._clock())
        message = CampaignMessages.of(campaign, self._sender, store.catch_up_issue)
        # This process's first lane's transport, built now because its kind
        # decides the plan (building one opens nothing: lanes open their own).
        first = self._transports()
        plan = self._choose(first, campaign)
        state = _RunState(plan)
        helpers = HelperProcesses(plan.processes - 1)
        self._helpers = helpers
        helpers.start(self._before_fork, lambda: self._work_as_helper(campaign, message, plan))
        try:
            self._work(campaign, message, progress, state, first)
        except BaseException:
            helpers.stop()
            raise
        finally:
            # Helpers end when nothing is left to claim (or on the stop above).
            ends = helpers.wait()
            self._helpers = None
        said = [end.stop for end in ends if end.stop is not None]
        if said and store.pending(campaign.id):
            # A helper's stop explains the rows left, as a lane's would (and may need the owner).
            state.stop(said[0].reason)
            owner = next((stop.needs_owner for stop in said if stop.needs_owner), None)
            self._owner_reason = self._owner_reason or owner
        problems = [problem for end in ends if (problem := end.problem)]
        if problems:
            # A helper that died left its batch in flight: in doubt, never resent.
            store.expire_stale(campaign.id, self._clock(), self._lease, is_dead_sender)
            state.stop("; ".join(problems))
        store.finish_if_done(campaign.id, self._clock())
        return RunResult(
            counts=store.counts(campaign),
            stopped=state.stopped,
            batches=state.batches,
            needs_owner=self._owner_reason,
        )

    def _choose(self, transport: Transport, campaign: CampaignRecord) -> SendPlan:
        """Lanes and processes for this run (settings first, auto for the rest); announced."""
        plan = plan_run(
            transport.kind,
            lambda: self._store.pending(campaign.id),
            concurrency=self._concurrency,
            processes=self._processes,
            cpus=self._cpus,
            smtp_max_connections=self._smtp_max_connections,
            batch_size=self._batch_size,
        )
        self.last_plan = plan
        if self._on_plan is not None:
            self._on_plan(plan)
        return plan

    def _work(
        self,
        campaign: CampaignRecord,
        message: CampaignMessages,
        progress: Callable[[CampaignCounts], None] | None,
        state: _RunState,
        first: Transport | None = None,
    ) -> None:
        """This process's lanes, until nothing is left to claim or a stop."""
        state.lane = functools.partial(self._lane_in_thread, campaign, message, progress, state)
        self._start_lanes(state)
        try:
            self._lane(campaign, message, progress, state, first)
        except BaseException:
            # A second Ctrl-C or a crash in this lane: the other lanes stop too.
            self.request_stop()
            raise
        finally:
            # Only a running lane starts another, and lists it before going on:
            # once every listed lane is joined, none is left to start more.
            joined = 0
            while True:
                with state.lock:
                    if joined == len(state.lanes):
                        break
                    thread = state.lanes[joined]
                thread.join()
                joined += 1
        if state.error is not None:
            raise state.error

    def _start_lanes(self, state: _RunState) -> None:
        """Start lanes up to as many as may have a batch out now (the gate's limit).

        Auto lanes against a fast provider settle on one: the seven never
        given a turn were each claiming once more at the end of the run to
        find nothing, one after another. So a lane starts when the limit first
        lets it have a turn; lanes set in settings all start at once.
        """
        with state.lock:
            while len(state.lanes) + 1 < state.gate.limit:
                if self._stop.is_set() or state.stopped is not None:
                    return
                thread = threading.Thread(
                    target=state.lane, name=f"send-lane-{len(state.lanes) + 1}", daemon=True
                )
                thread.start()
                state.lanes.append(thread)  # under the lock: _work joins every one listed

    def _work_as_helper(
        self, campaign: CampaignRecord, message: CampaignMessages, plan: SendPlan
    ) -> HelperStop | None:
        """A forked helper's whole life: its own identity, stop signals and lanes.

        Returns why it stopped early (None: it finished), for the parent's report.
        """
        self._identity = sender_identity()  # claims must name this process, not the parent
        self._helpers = None
        self._stop = threading.Event()
        self._open = []
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda _signum, _frame: self.request_stop())
        state = _RunState(plan)
        self._work(campaign, message, None, state)
        if state.stopped is None:
            return None
        return HelperStop(state.stopped, self._owner_reason)

    def _lane_in_thread(
        self,
        campaign: CampaignRecord,
        message: CampaignMessages,
        progress: Callable[[CampaignCounts], None] | None,
        state: _RunState,
    ) -> None:
        try:
            self._lane(campaign, message, progress, state)
        except BaseException as exc:  # handed to the main thread, which re-raises it
            state.error = exc
            self.request_stop()

    def _lane(
        self,
        campaign: CampaignRecord,
        message: CampaignMessages,
        progress: Callable[[CampaignCounts], None] | None,
        state: _RunState,
        transport: Transport | None = None,
    ) -> None:
        store = self._store
        if transport is None:
            transport = self._transports()
        # A per-message transport re-checks unsubscribes as it goes (the claim
        # checked them once, but an SMTP batch can take minutes).
        transport.watch_unsubscribes(store.still_wanted)
        self._open.append(transport)
        if self._stop.is_set():
            transport.request_stop()
        after = 0  # the last row this lane claimed: its next claim looks past it
        with transport:
            while True:
                if self._stop.is_set():
                    state.stop("stopped on request; run send again to carry on")
                if state.stopped is not None:
                    return
                with state.gate.turn(self._stop.is_set):  # pipeline.sending.lanes
                    if self._stop.is_set() or state.stopped is not None:
                        continue  # the loop's top says why
                    work, waited = time.thread_time(), transport.waited
                    # The claim itself skips (suppresses) anyone who left since planning.
                    claim = store.claim(
                        campaign.id, self._batch_size, self._clock(), self._identity, after
                    )
                    if not claim.rows:
                        return
                    if state.stopped is not None:
                        # Another lane stopped the run (and gave these rows back) meanwhile.
                        store.release(claim)
                        return
                    after = claim.rows[-1].delivery_id
                    with state.lock:
                        state.batches += 1
                    end = self._batches.send_claim(
                        transport, message, claim, self._stop.is_set, lambda e: state.stop(e.reason)
                    )
                    state.gate.observe(transport.waited - waited, time.thread_time() - work)
                self._start_lanes(state)
                if end is not None and end.needs_owner and self._owner_reason is None:
                    self._owner_reason = end.reason
                if self._brake is not None and (why := self._brake(campaign.id)):
                    self._owner_reason = self._owner_reason or why  # pipeline.sending.brake
                    state.stop(why)
                if progress is not None and state.progress_due():
                    progress(store.counts(campaign))
