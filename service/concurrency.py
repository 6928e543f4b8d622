"""How many generation requests are in flight, across all gunicorn worker processes.

The counts live in shared memory made when the app is built, which with gunicorn's
``preload_app`` is in the master before it forks, so every worker sees the same numbers. Each
process counts in its own slot, so when gunicorn reports a worker gone (``child_exit``), the
requests it had in flight are forgotten with it instead of blocking the limit for good.
"""
from __future__ import annotations

import logging
import multiprocessing
import os

logger = logging.getLogger(__name__)


class InFlightLimit:
    """At most ``limit`` requests in flight at once; ``try_enter`` says whether one more may start."""

    def __init__(self, limit: int, slots: int = 256):
        self.limit = limit
        self._lock = multiprocessing.Lock()
        self._pids = multiprocessing.RawArray("q", slots)
        self._counts = multiprocessing.RawArray("q", slots)

    def try_enter(self) -> bool:
        """Count one more request in flight, unless ``limit`` already are."""
        with self._lock:
            if sum(self._counts) >= self.limit:
                return False
            self._counts[self._slot(os.getpid())] += 1
            return True

    def leave(self) -> None:
        """A request that entered has finished."""
        with self._lock:
            slot = self._slot(os.getpid())
            self._counts[slot] = max(0, self._counts[slot] - 1)

    def in_flight(self) -> int:
        with self._lock:
            return sum(self._counts)

    def forget_process(self, pid: int) -> None:
        """Drop what a process that has exited still had counted."""
        with self._lock:
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
            raise RuntimeError(f"more than {len(self._pids)} processes share the in-flight limit")
        self._pids[free], self._counts[free] = pid, 0
        return free


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
