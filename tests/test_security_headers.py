"""Every response carries the security headers: the playground, its files, JSON, errors, streams."""
from __future__ import annotations

from service.security_headers import SECURITY_HEADERS


def test_every_kind_of_response_carries_them(client):
    responses = [client.get("/"), client.get("/static/playground.js"), client.get("/health"), client.get("/nope"),
                 client.post("/generate", json={"parameters": {"top_k": 0}}),
                 client.post("/generate_stream", json={"parameters": {"max_new_tokens": 2}})]
    assert [r.status_code for r in responses] == [200, 200, 200, 404, 422, 200]
    for response in responses:
        for name, value in SECURITY_HEADERS.items():
            assert response.headers[name] == value, (response.request.path, name)
    policy = SECURITY_HEADERS["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in policy and "script-src 'self'" in policy and "'unsafe-inline'" not in policy
    assert SECURITY_HEADERS["X-Content-Type-Options"] == "nosniff"
