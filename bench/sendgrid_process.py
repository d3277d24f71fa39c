"""The loopback SendGrid of ``make bench``, in a process of its own.

SendGrid does not share our interpreter, so neither does the server we measure
against: in a thread of the benchmark process, its JSON parsing would compete
with the sender for the GIL and every lane would wait on it. Here it has its
own process, parses every body as SendGrid would, keeps none of them (so a long
run does not grow its heap), and counts what it accepted.

Run as a script (optional argument: seconds each answer is delayed, a real
API's latency) it prints its URL, then answers ``delivered`` with the number
of personalizations accepted so far, and stops on ``stop`` or end of input.
:class:`SendGridProcess` drives it from the benchmark.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import TracebackType

ROOT = Path(__file__).resolve().parent.parent


class SendGridProcess:
    """Start the server process with ``with``; ``url`` is what SENDGRID_API_HOST takes."""

    def __init__(self, latency: float = 0.0) -> None:
        self._process: subprocess.Popen[str] | None = None
        self._latency = latency
        self.url = ""

    def __enter__(self) -> SendGridProcess:
        self._process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), str(self._latency)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        self.url = self._ask(None)
        if not self.url.startswith("http://127.0.0.1:"):
            raise RuntimeError(f"the loopback SendGrid did not start (said {self.url!r})")
        return self

    def delivered(self) -> int:
        """Personalizations the server accepted so far."""
        return int(self._ask("delivered"))

    def _ask(self, command: str | None) -> str:
        process = self._process
        assert process is not None and process.stdin is not None and process.stdout is not None
        if command is not None:
            process.stdin.write(command + "\n")
            process.stdin.flush()
        return process.stdout.readline().strip()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        process = self._process
        if process is None:
            return
        try:
            assert process.stdin is not None
            process.stdin.write("stop\n")
            process.stdin.close()
            process.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            process.kill()
            process.wait(timeout=10)


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from tests.fakes.sendgrid_server import SendGridServer

    latency = float(sys.argv[1]) if len(sys.argv) > 1 else 0.0
    with SendGridServer(validate=False, keep_bodies=False, latency=latency) as server:
        print(server.url, flush=True)
        for line in sys.stdin:
            command = line.strip()
            if command == "delivered":
                print(server.delivered_count(), flush=True)
            elif command == "stop":
                break


if __name__ == "__main__":
    main()
