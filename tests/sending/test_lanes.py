"""How many lanes have a batch out (pipeline.sending.lanes): the provider's answer time decides."""

from __future__ import annotations

import threading

from pipeline.sending.lanes import START, LaneGate


def _never() -> bool:
    return False


def test_auto_lanes_start_at_two_and_follow_the_answer_time() -> None:
    gate = LaneGate(8, adaptive=True)
    assert gate.limit == START == 2
    # A real API: 150 ms answers for 20 ms of work per batch wants 1 + 7.5 lanes: all 8.
    gate.observe(waited=0.150, work=0.020)
    assert gate.limit == 8
    # The loopback server: 6 ms answers for 20 ms of work: a second batch's work
    # would not fit in the wait, but two stay out (the database's waits are not
    # in the ratio; a second lane fills them).
    gate = LaneGate(8, adaptive=True)
    for _ in range(3):
        gate.observe(waited=0.006, work=0.020)
    assert gate.limit == START
    # Room for a third lane once two batches' work fits in the wait.
    gate = LaneGate(8, adaptive=True)
    gate.observe(waited=0.045, work=0.020)
    assert gate.limit == 3
    # CPU only (the answer is instant): never fewer than START.
    gate.observe(waited=0.0, work=0.020)
    assert gate.limit == START
    # A plan of one lane (one batch to send) keeps one.
    gate = LaneGate(1, adaptive=True)
    gate.observe(waited=0.0, work=0.020)
    assert gate.limit == 1


def test_the_shortest_recent_answer_counts_not_one_slowed_by_the_gil() -> None:
    gate = LaneGate(8, adaptive=True)
    for waited in (0.046, 0.090, 0.047, 0.120):
        gate.observe(waited=waited, work=0.020)
    assert gate.limit == 3  # 1 + floor(46 / 20), not 1 + 90 / 20


def test_settings_lanes_all_run_whatever_the_answers() -> None:
    gate = LaneGate(5, adaptive=False)
    assert gate.limit == 5
    gate.observe(waited=0.0, work=1.0)
    assert gate.limit == 5


def test_a_lane_waits_for_its_turn_until_the_limit_rises() -> None:
    gate = LaneGate(8, adaptive=True)
    got_turn = threading.Event()

    def third_lane() -> None:
        with gate.turn(_never):
            got_turn.set()

    with gate.turn(_never), gate.turn(_never):
        lane = threading.Thread(target=third_lane, daemon=True)
        lane.start()
        assert not got_turn.wait(0.2)  # two out, limit two: the third waits
        gate.observe(waited=0.150, work=0.020)
        assert got_turn.wait(5)
        lane.join(5)
    assert gate.peak == 3


def test_a_stop_ends_the_wait_for_a_turn() -> None:
    gate = LaneGate(8, adaptive=True)
    with gate.turn(_never), gate.turn(_never), gate.turn(lambda: True):
        pass  # the stop let it through at once, to see the stop and end
