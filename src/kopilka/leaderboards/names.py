"""How a member is shown on a leaderboard, without I/O: a nickname checked, or a name
masked ("Анна Кузнецова" → "Анна К.")."""

from __future__ import annotations

import itertools
import unicodedata

NICK_MIN, NICK_MAX = 3, 20
_PUNCT = frozenset(" _-.")


def check_nickname(raw: str) -> str:
    """``raw`` as a nickname (trimmed, NFC), or ``ValueError`` saying why: 3 to 20
    letters (any alphabet), digits, spaces, ``_``, ``-`` or ``.``, starting and ending
    with a letter or digit, no two spaces or signs in a row."""
    nick = unicodedata.normalize("NFC", raw.strip())
    if not NICK_MIN <= len(nick) <= NICK_MAX:
        raise ValueError(f"a nickname is {NICK_MIN} to {NICK_MAX} characters long")
    for ch in nick:
        if not (ch.isalnum() or ch in _PUNCT):
            raise ValueError(
                f"a nickname has letters, digits, spaces, '_', '-' and '.' only (not {ch!r})"
            )
    if not (nick[0].isalnum() and nick[-1].isalnum()):
        raise ValueError("a nickname starts and ends with a letter or a digit")
    if any(a in _PUNCT and b in _PUNCT for a, b in itertools.pairwise(nick)):
        raise ValueError("a nickname has no two spaces or signs in a row")
    return nick


def nickname_key(nick: str) -> str:
    """What two nicknames must not share: ``Анна`` and ``АННА`` are one (case folded)."""
    return nick.casefold()


def masked_name(name: str | None, card_number: str) -> str:
    """The first word of the name and the initial of the second ("Анна К."); without a
    name, the card number's last four digits ("#1234")."""
    words = (name or "").split()
    if not words:
        return f"#{card_number[-4:]}"
    first = words[0][:30]
    if len(words) > 1:
        return f"{first} {words[1][0].upper()}."
    return first
