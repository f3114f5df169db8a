"""Identifiers: time-ordered UUIDs (version 7) so that keys index and paginate in order."""

from __future__ import annotations

import os
import time
import uuid


def uuid7() -> uuid.UUID:
    """A UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then 74 random bits."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76  # version
    value |= ((rand >> 62) & 0xFFF) << 64  # rand_a, 12 bits
    value |= 0b10 << 62  # variant
    value |= rand & ((1 << 62) - 1)  # rand_b, 62 bits
    return uuid.UUID(int=value)


def uuid7_floor(at_ms: int) -> uuid.UUID:
    """The smallest UUIDv7 of the millisecond ``at_ms``: ``id >= uuid7_floor(t)`` selects
    the rows made at ``t`` or later through the primary key alone."""
    return uuid.UUID(int=((at_ms & ((1 << 48) - 1)) << 80) | (0x7 << 76) | (0b10 << 62))
