"""Counts shared by gunicorn's worker processes: the requests in flight (``InFlightLimit``), and
the connections each worker holds (service/thread_worker.py).

The counts live in shared memory made in gunicorn's master before it forks (the limit when the
app is built, with ``preload_app``; the connections when gunicorn loads the worker class), so
every worker sees the same numbers. Each process counts in its own slot, so when gunicorn reports
a worker gone (``child_exit``), what it had counted is forgotten with it instead of blocking the
limit for good.
"""
from __future__ import annotations

import logging
import multiprocessing
import os

logger = logging.getLogger(__name__)


class ProcessCounts:
    """A count per process, in memory shared by every process forked after it is made; each
    process changes only its own, and anyone may read them all."""

    def __init__(self, slots: int = 256):
        self.lock = multiprocessing.Lock()
        self._pids = multiprocessing.RawArray("q", slots)
        self._counts = multiprocessing.RawArray("q", slots)

    def total(self) -> int:
        """The sum over all processes (the lock must be held)."""
        return sum(self._counts)

    def own(self) -> int:
        """This process's count (the lock must be held)."""
        return self._counts[self._slot(os.getpid())]

    def set_own(self, count: int) -> None:
        """Set this process's count (the lock must be held)."""
        self._counts[self._slot(os.getpid())] = max(0, count)

    def forget_process(self, pid: int) -> None:
        """Drop what a process that has exited still had counted."""
        with self.lock:
            for slot, owner in enumerate(self._pids):
                if owner == pid:
                    self._pids[slot] = self._counts[slot] = 0

    def _slot(self, pid: int) -> int:
        """This process's slot (the lock is held): its own, else a free one, else one whose
        process no longer exists."""
        free = None
        for slot, owner in enumerate(self._pids):
            if owner == pid:
                return slot
            if owner == 0 and free is None:
                free = slot
        if free is None:
            free = next((s for s, owner in enumerate(self._pids) if not _alive(owner)), None)
        if free is None:
            raise RuntimeError(f"more than {len(self._pids)} processes share these counts")
        self._pids[free], self._counts[free] = pid, 0
        return free


class InFlightLimit:
    """At most ``limit`` requests in flight at once; ``try_enter`` says whether one more may start."""

    def __init__(self, limit: int, slots: int = 256):
        self.limit = limit
        self._counts = ProcessCounts(slots)

    def try_enter(self) -> bool:
        """Count one more request in flight, unless ``limit`` already are."""
        with self._counts.lock:
            if self._counts.total() >= self.limit:
                return False
            self._counts.set_own(self._counts.own() + 1)
            return True

    def leave(self) -> None:
        """A request that entered has finished."""
        with self._counts.lock:
            self._counts.set_own(self._counts.own() - 1)

    def in_flight(self) -> int:
        with self._counts.lock:
            return self._counts.total()

    def forget_process(self, pid: int) -> None:
        """Drop what a process that has exited still had counted."""
        self._counts.forget_process(pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
