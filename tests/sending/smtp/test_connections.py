"""SMTP connections: reused, reopened after a drop, in doubt after a late drop, or refused."""

from __future__ import annotations

import socket
import threading
import time

from pipeline.config import Settings
from pipeline.sending.transports.base import DeliveryResult, Outcome
from tests.fakes.smtp_server import SmtpTestServer
from tests.sending.smtp.helpers import (
    FakeSleep,
    campaign,
    configure,
    outcomes,
    recipients,
    transport_for,
)


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


# -- connections ---------------------------------------------------------------------


def test_a_connection_dropped_between_messages_is_reopened(
    base_settings: Settings, sleep: FakeSleep
) -> None:
    with SmtpTestServer() as server:
        settings = configure(base_settings, server.port)
        people = recipients(6)
        server.drop_after(2)
        server.drop_after(4)
        with transport_for(settings, sleep) as transport:
            results = transport.send_batch(campaign(settings), people)

        assert outcomes(results) == [Outcome.SENT] * 6
        assert server.recipients == [p.email for p in people]  # nothing lost, nothing doubled
        assert server.connections == 3
        assert [m.connection for m in server.messages] == [1, 1, 2, 2, 3, 3]
        assert sleep.calls == []  # a stale connection is reopened at once


def test_the_connection_is_reused_across_batches_and_reopened_after_close(
    base_settings: Settings, sleep: FakeSleep
) -> None:
    with SmtpTestServer() as server:
        settings = configure(base_settings, server.port)
        transport = transport_for(settings, sleep)
        with transport:
            transport.send_batch(campaign(settings), recipients(2))
            transport.send_batch(campaign(settings), recipients(2, start=2))
        assert server.connections == 1
        with transport:
            transport.send_batch(campaign(settings), recipients(1, start=4))
        assert server.connections == 2
        assert len(server.recipients) == 5


def test_a_drop_after_the_content_went_out_is_uncertain_and_not_resent(
    base_settings: Settings, sleep: FakeSleep
) -> None:
    with SmtpTestServer() as server:
        settings = configure(base_settings, server.port)
        people = recipients(3)
        server.drop_before_reply(2)
        with transport_for(settings, sleep) as transport:
            results = transport.send_batch(campaign(settings), people)

        assert outcomes(results) == [Outcome.SENT, Outcome.UNCERTAIN, Outcome.SENT]
        assert results[1].message_id  # kept, so the message can be looked for
        assert "not resent" in (results[1].error or "")
        assert server.recipients == [p.email for p in people]  # the server did get it, once
        assert server.connections == 2


def test_nothing_listening_defers_the_whole_batch_after_one_retry_cycle(
    base_settings: Settings, sleep: FakeSleep
) -> None:
    settings = configure(base_settings, free_port(), max_retries=3)
    started = time.monotonic()
    with transport_for(settings, sleep) as transport:
        results = transport.send_batch(campaign(settings), recipients(50))
        assert sleep.calls == [1.0, 2.0, 4.0]  # once for the batch, not once per recipient
        # The next batch tries again (the server may be back), once more.
        again = transport.send_batch(campaign(settings), recipients(2, start=50))

    assert outcomes(results) == [Outcome.DEFERRED] * 50
    assert outcomes(again) == [Outcome.DEFERRED] * 2
    assert "cannot connect" in (results[0].error or "")
    assert "cannot connect" in (results[-1].error or "")
    assert sleep.calls == [1.0, 2.0, 4.0] * 2
    assert time.monotonic() - started < 5


class _HangsUpAtMailFrom:
    """A server that greets, answers EHLO, then closes every connection at MAIL FROM."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self.connections = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return  # closed
            self.connections += 1
            with conn, conn.makefile("rb") as lines:
                conn.sendall(b"220 hello\r\n")
                for line in lines:
                    if not line.upper().startswith((b"EHLO", b"HELO")):
                        break
                    conn.sendall(b"250 ok\r\n")

    def close(self) -> None:
        self.sock.close()
        self.thread.join(5)


def test_drops_on_new_connections_count_as_retries_then_defer(
    base_settings: Settings, sleep: FakeSleep
) -> None:
    """A drop right after connecting is a retry with backoff, not a free reconnect.

    Only a drop on a connection that already carried a message says the server
    closed an idle connection; on a new one it says the server refuses us, and
    reconnecting at once forever would hold the batch (and its lease) for good.
    """
    server = _HangsUpAtMailFrom()
    settings = configure(base_settings, server.port, max_retries=3)
    transport = transport_for(settings, sleep)
    results: list[DeliveryResult] = []
    sender = threading.Thread(
        target=lambda: results.extend(transport.send_batch(campaign(settings), recipients(1)))
    )
    sender.start()
    sender.join(10)  # bounded: were it reconnecting forever, this test must still end
    finished = not sender.is_alive()
    server.close()  # also ends a sender still reconnecting (it can no longer connect)
    sender.join(10)
    assert finished, f"still reconnecting after 10 s ({server.connections} connections)"
    assert outcomes(results) == [Outcome.DEFERRED]
    assert server.connections == 4 and len(sleep.calls) == 3  # the first try and 3 retries
