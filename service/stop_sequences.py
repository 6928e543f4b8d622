"""Stop sequences, matched on the generated text (not on words), so a stop string may span
several words or part of one.

``earliest_stop`` finds where the output must end; ``undecided_tail`` says how many characters
at the end of the text could still turn out to begin a stop string, which a stream must hold
back so that no part of a stop string ever reaches the client.
"""
from __future__ import annotations

from collections.abc import Sequence


def earliest_stop(text: str, stops: Sequence[str], search_from: int = 0) -> int | None:
    """The index in ``text`` where the first stop string begins, or None.

    ``search_from`` skips the part already searched (less the longest stop string, so a match
    that straddles the boundary is still found).
    """
    start = max(0, search_from - max((len(s) for s in stops), default=0))
    found = [i for i in (text.find(stop, start) for stop in stops) if i >= 0]
    return min(found) if found else None


def undecided_tail(text: str, stops: Sequence[str]) -> int:
    """The length of the longest end of ``text`` that is the beginning of a stop string."""
    longest = 0
    for stop in stops:
        for length in range(min(len(stop) - 1, len(text)), longest, -1):
            if text.endswith(stop[:length]):
                longest = length
                break
    return longest
