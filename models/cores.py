"""How many CPUs this process may use (no NumPy here: the service's gunicorn config reads it
before NumPy is loaded)."""
from __future__ import annotations

import os


def available_cores() -> int:
    """CPUs this process may run on: the default number of training threads and of service workers."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
