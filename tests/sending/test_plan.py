"""The auto lanes and processes of a send (pipeline.sending.plan): the decision table."""

from __future__ import annotations

import pytest

from pipeline.sending.plan import (
    API_LANES,
    ROWS_PER_PROCESS,
    SendPlan,
    TransportKind,
    choose_plan,
)


def _auto(
    kind: TransportKind,
    pending: int,
    cpus: int,
    *,
    concurrency: int | None = None,
    processes: int | None = None,
    max_connections: int = 3,
    batch_size: int = 1000,
    can_fork: bool = True,
) -> SendPlan:
    return choose_plan(
        kind,
        pending,
        concurrency=concurrency,
        processes=processes,
        cpus=cpus,
        smtp_max_connections=max_connections,
        batch_size=batch_size,
        can_fork=can_fork,
    )


@pytest.mark.parametrize(
    ("kind", "pending", "cpus", "expected"),
    [
        # An API waits on the network: up to API_LANES requests in flight, as many
        # as its answer time needs (pipeline.sending.lanes).
        ("api", 5000, 1, SendPlan(5, 1, adaptive=True)),  # no more lanes than batches
        ("api", 8001, 1, SendPlan(API_LANES, 1, adaptive=True)),
        ("api", 9000, 8, SendPlan(API_LANES, 1, adaptive=True)),  # too small to repay a fork
        ("api", 500, 8, SendPlan(1, 1)),  # one batch: one lane, one request
        ("api", ROWS_PER_PROCESS - 1, 2, SendPlan(API_LANES, 1, adaptive=True)),
        ("api", 2 * ROWS_PER_PROCESS, 2, SendPlan(API_LANES, 2, adaptive=True)),
        ("api", 100_000, 1, SendPlan(API_LANES, 1, adaptive=True)),  # no core to spare
        ("api", 100_000, 2, SendPlan(API_LANES, 2, adaptive=True)),  # at most a process per core
        ("api", 1_000_000, 64, SendPlan(API_LANES, 4, adaptive=True)),  # and at most four
        ("api", 50_000, 8, SendPlan(API_LANES, 2, adaptive=True)),  # a process per 20,000 rows
        # SMTP: lanes over all processes stay within [smtp] max_connections (3).
        ("smtp", 5000, 2, SendPlan(3, 1)),
        ("smtp", 500, 2, SendPlan(1, 1)),
        ("smtp", 100_000, 2, SendPlan(1, 2)),
        ("smtp", 100_000, 8, SendPlan(1, 3)),
        # The outbox works on the CPU: one lane; processes when big and cores exist.
        ("local", 500, 2, SendPlan(1, 1)),
        ("local", 100_000, 2, SendPlan(1, 2)),
    ],
)
def test_auto_decision_table(
    kind: TransportKind, pending: int, cpus: int, expected: SendPlan
) -> None:
    assert _auto(kind, pending, cpus) == expected


def test_explicit_settings_win() -> None:
    assert _auto("api", 100_000, 8, concurrency=1, processes=1) == SendPlan(1, 1)
    assert _auto("local", 10, 1, concurrency=6, processes=3) == SendPlan(6, 3)
    # One explicit, the other auto: only the auto one is chosen.
    assert _auto("api", 100_000, 2, concurrency=2) == SendPlan(2, 2)
    assert _auto("api", 100_000, 2, processes=2) == SendPlan(API_LANES, 2, adaptive=True)
    assert _auto("api", 10, 2, processes=2) == SendPlan(1, 2)
    # Explicit lanes on SMTP are the owner's call, above max_connections too.
    assert _auto("smtp", 10, 2, concurrency=5) == SendPlan(5, 1)


def test_smtp_lanes_follow_max_connections() -> None:
    assert _auto("smtp", 10_000, 2, max_connections=1) == SendPlan(1, 1)
    assert _auto("smtp", 10_000, 2, max_connections=8) == SendPlan(8, 1)
    assert _auto("smtp", 100_000, 2, max_connections=8) == SendPlan(4, 2)
    assert _auto("smtp", 100_000, 4, max_connections=1) == SendPlan(1, 1)


def test_no_more_auto_lanes_than_batches() -> None:
    # Lanes with nothing to claim add nothing; on PostgreSQL two lanes claiming at
    # once would split one batch's rows into two requests.
    assert _auto("api", 1000, 1) == SendPlan(1, 1)
    assert _auto("api", 1001, 1) == SendPlan(2, 1, adaptive=True)
    assert _auto("api", 3000, 1, batch_size=500) == SendPlan(6, 1, adaptive=True)
    assert _auto("smtp", 40_000, 2, max_connections=8, batch_size=10_000) == SendPlan(2, 2)
    assert _auto("api", 0, 2) == SendPlan(1, 1)


def test_no_helpers_without_fork() -> None:
    assert _auto("api", 1_000_000, 8, can_fork=False) == SendPlan(API_LANES, 1, adaptive=True)


def test_the_line_a_send_prints() -> None:
    assert SendPlan(4, 2).describe() == "sending with 4 lanes in 2 processes"
    assert SendPlan(1, 1).describe() == "sending with 1 lane in 1 process"
    assert SendPlan(8, 2, adaptive=True).describe() == (
        "sending with up to 8 lanes in 2 processes (as many as the provider's answer time needs)"
    )
