"""service.response.json_response writes what flask.jsonify writes."""
from __future__ import annotations

import pytest
from flask import Flask, jsonify

from service.response import JSON_ENCODER_KEY, json_response

BODIES = [
    {"generated_text": " and \"so\" — é\u2028", "sentences": ["And so."], "z": 1, "a": [1.5, -0.0, 1e-7, None, True]},
    [{"id": 3, "logprob": -2.302585092994046}],
    {"b": {"d": {}, "c": []}, "a": ""},
]


@pytest.mark.parametrize("body", BODIES)
@pytest.mark.parametrize("debug", [False, True])
def test_the_same_answer_as_jsonify(app: Flask, body, debug: bool):
    app.debug = debug
    try:
        with app.test_request_context("/generate", method="POST"):
            ours, flasks = json_response(body), jsonify(body)
            assert ours.get_data() == flasks.get_data()
            assert ours.status_code == flasks.status_code == 200
            assert list(ours.headers.items()) == list(flasks.headers.items())
            assert type(ours) is type(flasks)
    finally:
        app.debug = False


def test_the_encoder_is_made_once_from_the_apps_settings(app: Flask):
    """Outside debug mode the answers above come from the encoder made at start, not jsonify."""
    encoder = app.extensions[JSON_ENCODER_KEY]
    assert encoder is not None
    assert (encoder.sort_keys, encoder.ensure_ascii) == (app.json.sort_keys, app.json.ensure_ascii) == (False, True)
