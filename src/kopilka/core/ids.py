"""Identifiers: time-ordered UUIDs (version 7) so that keys index and paginate in order."""

from __future__ import annotations

import os
import threading
import time
import uuid

_lock = threading.Lock()
_last = [0]


def uuid7() -> uuid.UUID:
    """A UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then 74 random bits; increasing
    within the process (RFC 9562, 6.2, method 3: a value that would not come after the last
    one is the last one plus a random step), so the rows one operation writes in a
    millisecond (a receipt's redemption, then its earning) keep their order."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = _compose(ms, rand)
    with _lock:
        if value <= _last[0]:
            # the 62 bits of rand_b step on from the last value (a carry goes into rand_a
            # and the time: the value stays a UUIDv7, a little ahead of the clock)
            step = 1 + (rand & 0xFFFF)
            value = _compose_after(_last[0], step)
        _last[0] = value
    return uuid.UUID(int=value)


def _compose(ms: int, rand: int) -> int:
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76  # version
    value |= ((rand >> 62) & 0xFFF) << 64  # rand_a, 12 bits
    value |= 0b10 << 62  # variant
    value |= rand & ((1 << 62) - 1)  # rand_b, 62 bits
    return value


def _compose_after(last: int, step: int) -> int:
    """The value ``step`` after ``last`` counting only the 122 bits that are not the
    version and the variant (48 of time, 12 of rand_a, 62 of rand_b)."""
    ms = last >> 80
    rand_a = (last >> 64) & 0xFFF
    rand_b = last & ((1 << 62) - 1)
    counted = (((ms << 12) | rand_a) << 62 | rand_b) + step
    rand_b = counted & ((1 << 62) - 1)
    rand_a = (counted >> 62) & 0xFFF
    ms = counted >> 74
    return _compose(ms, (rand_a << 62) | rand_b)


def uuid7_floor(at_ms: int) -> uuid.UUID:
    """The smallest UUIDv7 of the millisecond ``at_ms``: ``id >= uuid7_floor(t)`` selects
    the rows made at ``t`` or later through the primary key alone."""
    return uuid.UUID(int=((at_ms & ((1 << 48) - 1)) << 80) | (0x7 << 76) | (0b10 << 62))
