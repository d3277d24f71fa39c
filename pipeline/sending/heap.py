"""The garbage collector's work kept in proportion during a send run (see :class:`HeapFreeze`)."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class HeapFreeze:
    """Keeps the garbage collector's work in proportion during a run.

    A run allocates a few short-lived containers per recipient, so the
    collector runs often, and each full pass walked every object the process
    had loaded (SQLAlchemy, pydantic, the templates): about a fifth of a run's
    time. ``gc.freeze`` parks those objects for the length of the run, and a
    larger first-generation threshold makes the young passes rarer (another
    tenth). Both are undone when the last run in the process ends, so nothing
    is kept longer than it would be. Counted, because runs can overlap in a
    process (lanes, the scheduler's worker).
    """

    #: Allocations between young collections during a run (CPython's default is 700).
    YOUNG_THRESHOLD = 20_000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs = 0
        self._thresholds = gc.get_threshold()

    @contextmanager
    def during_run(self) -> Iterator[None]:
        """Freeze the heap and space out young collections while the body runs."""
        with self._lock:
            if self._runs == 0:
                gc.freeze()
                self._thresholds = gc.get_threshold()
                young, *older = self._thresholds
                gc.set_threshold(max(young, self.YOUNG_THRESHOLD), *older)
            self._runs += 1
        try:
            yield
        finally:
            with self._lock:
                self._runs -= 1
                if self._runs == 0:
                    gc.set_threshold(*self._thresholds)
                    gc.unfreeze()


#: The one per process: runs in the same process share it.
HEAP = HeapFreeze()
