"""The ``Kopilka-Signature`` header: ``t=UNIX_SECONDS,v1=HEX``, HEX = HMAC-SHA256 with the
endpoint's secret over ``"{t}.{raw body}"``. Pure functions, no I/O."""

from __future__ import annotations

import hashlib
import hmac
import time

HEADER = "Kopilka-Signature"
TOLERANCE_SECONDS = 300


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The header value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify_signature(
    secret: str,
    header: str,
    body: bytes,
    tolerance: int = TOLERANCE_SECONDS,
    at: float | None = None,
) -> bool:
    """What a receiver does (docs/webhooks.md): the HMAC matches, and the timestamp is
    within ``tolerance`` seconds of now (an old delivery replayed by someone is refused).
    Several ``v1=`` values (a secret being rotated) are accepted if any matches."""
    t: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isdigit():
            t = int(value)
        elif name == "v1" and value:
            candidates.append(value)
    if t is None or not candidates:
        return False
    if abs((time.time() if at is None else at) - t) > tolerance:
        return False
    expected = sign(secret, t, body).rpartition("v1=")[2]
    return any(hmac.compare_digest(expected, c) for c in candidates)
