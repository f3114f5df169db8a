"""Coupon codes: generation and normalisation (pure; no I/O).

A generated code reads ``PREFIX-XXXX-XXXX``: an optional prefix, then groups of random
characters from an alphabet without look-alikes (no ``0``/``O``, ``1``/``I``). Every
character carries 5 random bits from the operating system's CSPRNG (``secrets``).

A code is stored twice: as shown (``code``) and as its *lookup key*, the form every input
is reduced to before it is looked up: upper case, no spaces or dashes, Cyrillic letters
that look like Latin ones read as those (a code typed on a Russian keyboard layout still
matches). Uniqueness across all pools is on the lookup key, so ``spring 7kq2-m4xt`` and
``SPRING-7KQ2-M4XT`` are the same code.
"""

from __future__ import annotations

import base64
import re
import secrets
from dataclasses import dataclass

# 32 characters: 5 bits each, so random bytes map onto characters with base32 and no bias.
ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
_B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_TO_ALPHABET = bytes.maketrans(_B32.encode(), ALPHABET.encode())

# Cyrillic capitals that look like Latin ones (after upper-casing).
_HOMOGLYPHS = str.maketrans("АВЕКМНОРСТУХ", "ABEKMHOPCTYX")
_SEPARATORS = re.compile(r"[\s\-‐‑‒–—_.]+")
LOOKUP_RE = re.compile(r"^[A-Z0-9]{3,40}$")
PREFIX_RE = r"^[A-Z0-9]{0,16}$"

MAX_CODE_LENGTH = 64


@dataclass(frozen=True)
class Pattern:
    """How a pool's codes look: ``prefix`` and ``groups`` groups of ``group_length``."""

    prefix: str = ""
    groups: int = 2
    group_length: int = 4

    @property
    def random_chars(self) -> int:
        return self.groups * self.group_length

    @property
    def space(self) -> int:
        """How many distinct codes the pattern can make."""
        return int(len(ALPHABET) ** self.random_chars)

    def example(self) -> str:
        body = "-".join("X" * self.group_length for _ in range(self.groups))
        return f"{self.prefix}-{body}" if self.prefix else body


def lookup_key(raw: str) -> str | None:
    """The lookup key of what a person typed or a scanner read, or None if it cannot be a
    code at all (then it is answered as unknown without a query)."""
    key = _SEPARATORS.sub("", raw.strip().upper().translate(_HOMOGLYPHS))
    return key if LOOKUP_RE.match(key) else None


def display_form(raw: str) -> str:
    """An imported code as it will be shown: trimmed, upper case, inner spaces as dashes."""
    return re.sub(r"\s+", "-", raw.strip().upper().translate(_HOMOGLYPHS))


def _random_chars(count: int, length: int) -> list[str]:
    """``count`` strings of ``length`` characters of ``ALPHABET``, uniformly random."""
    total = count * length
    nbytes = -(-total * 5 // 8)  # ceil
    nbytes += -nbytes % 5  # base32 works on 5-byte blocks: no padding
    text = base64.b32encode(secrets.token_bytes(nbytes)).translate(_TO_ALPHABET).decode()
    return [text[i : i + length] for i in range(0, total, length)]


def generate(pattern: Pattern, count: int) -> list[tuple[str, str]]:
    """``count`` fresh codes as ``(code, lookup key)`` pairs. Not checked for uniqueness:
    the database's unique index does that (and the caller tops up for collisions)."""
    if count <= 0:
        return []
    g, n = pattern.groups, pattern.group_length
    head = f"{pattern.prefix}-" if pattern.prefix else ""
    out = []
    for body in _random_chars(count, pattern.random_chars):
        code = head + "-".join(body[i * n : (i + 1) * n] for i in range(g))
        out.append((code, pattern.prefix + body))
    return out
