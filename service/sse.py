"""Server-Sent Events: ``data: <json>`` lines, each event ended by a blank line."""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from flask import Response


def sse_event(data: Any) -> bytes:
    """One event; ``data`` is sent as compact JSON, or as is if it is a string (``[DONE]``)."""
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"), allow_nan=False)
    return f"data: {payload}\n\n".encode()


def event_stream(events: Iterable[bytes], on_close: Callable[[], None]) -> Response:
    """A streamed text/event-stream response; ``on_close`` (which must be safe to call twice) runs
    as soon as the last event is out, and again when the server closes the response (the only
    call if the stream was dropped before its first event). Waiting for the close alone held an
    in-flight slot for as long as the server or a client library kept a read response open."""

    def finishing() -> Iterator[bytes]:
        try:
            yield from events
        finally:
            on_close()

    response = Response(finishing(), mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"  # tell proxies not to hold events back
    response.call_on_close(on_close)
    return response
