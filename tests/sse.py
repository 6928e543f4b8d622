"""Reading Server-Sent Events in tests."""
from __future__ import annotations

import json
from typing import Any


def sse_data(text: str) -> list[Any]:
    """The ``data:`` payload of each event, JSON-decoded except ``[DONE]``; checks the framing."""
    assert text.endswith("\n\n"), "every event ends with a blank line"
    payloads = []
    for event in text[:-2].split("\n\n"):
        assert event.startswith("data: ") and "\n" not in event, event
        payload = event[len("data: "):]
        payloads.append(payload if payload == "[DONE]" else json.loads(payload))
    return payloads
