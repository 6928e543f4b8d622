"""Server-Sent Events: ``data: <json>`` lines, each event ended by a blank line."""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from flask import Response


def sse_event(data: Any) -> bytes:
    """One event; ``data`` is sent as compact JSON, or as is if it is a string (``[DONE]``)."""
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"), allow_nan=False)
    return f"data: {payload}\n\n".encode()


def event_stream(events: Iterable[bytes], on_close: Callable[[], None]) -> Response:
    """A streamed text/event-stream response; ``on_close`` runs once it is finished or dropped."""
    response = Response(events, mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"  # tell proxies not to hold events back
    response.call_on_close(on_close)
    return response
