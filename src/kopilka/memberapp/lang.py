"""The member app's language, for its pages and its API alike.

The language is the member's choice (cookie ``kopilka_lang``, set from the profile or the
sign-in page) or else the browser's (``Accept-Language``, by quality); English otherwise.
"""

from __future__ import annotations

LANGS = ("en", "ru")
LANG_COOKIE = "kopilka_lang"


def pick_lang(accept_language: str | None, chosen: str | None = None) -> str:
    """The member's chosen language if valid, else the best of ``LANGS`` for an
    ``Accept-Language`` header (by quality, the first on a tie), else English."""
    if chosen in LANGS:
        return chosen
    best, best_q = "en", 0.0
    for part in (accept_language or "").split(","):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                q = float(params[2:])
            except ValueError:
                q = 0.0
        lang = tag.strip().lower().split("-")[0]
        if lang in LANGS and q > best_q:
            best, best_q = lang, q
    return best
