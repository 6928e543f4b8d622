"""Security headers on every response: what the playground page may load and who may frame it.

The playground loads only its own scripts, styles and API (no inline code, nothing from
elsewhere: tests/test_playground.py), so one strict policy covers it and costs the JSON routes
nothing. ``frame-ancestors`` works only as a header (a ``<meta>`` policy ignores it);
X-Frame-Options says the same to browsers that predate it. ``service.response`` adds them to
every response that does not set them itself.
"""
from __future__ import annotations

CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:", "connect-src 'self'",
    "object-src 'none'", "base-uri 'none'", "form-action 'self'", "frame-ancestors 'none'",
))
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
