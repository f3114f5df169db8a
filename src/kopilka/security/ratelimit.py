"""Rate limits shared by every worker process: sliding-window counters in the database.

A limit is "at most N hits per W seconds" for one subject (an API key, an address, a
member). Each hit is one atomic ``INSERT … ON CONFLICT DO UPDATE … RETURNING`` on
``rate_limit_counters`` in its own short transaction (it must count even when the request
it guards fails and rolls back), so any number of processes on SQLite or PostgreSQL share
the same counters and no Redis is needed. The window slides: the previous fixed window's
count is weighed by how much of it still overlaps (the sliding-window-counter estimate),
so a burst at a window edge cannot double the limit.

Over the limit: 429 ``rate_limited`` with ``Retry-After`` (seconds until one more hit would
be allowed). Hits that are refused still count, so a caller that keeps hammering stays out.

Use on a route: ``dependencies=[Depends(rate_limit("coupon_lookup", per=("key", "ip")))]``,
or from a service: ``enforce(limit, subject)``. Limits are declared with ``define`` and
can be changed by ``KOPILKA_RATE_LIMITS`` (``name=N/SECONDS,…``).
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from sqlalchemy import case, delete
from sqlalchemy.dialects import postgresql, sqlite

from kopilka.core import context
from kopilka.core.auth import PrincipalDep
from kopilka.core.config import get_settings
from kopilka.core.db import get_db
from kopilka.core.errors import Problem
from kopilka.security.models import RateCounter


@dataclass(frozen=True)
class Limit:
    name: str
    limit: int  # hits allowed per window
    window: int  # seconds


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after: int  # seconds; 0 when allowed
    estimate: float  # hits in the sliding window, this one included


_lock = threading.Lock()
_defaults: dict[str, Limit] = {}
_blocked: dict[str, float] = {}  # bucket -> monotonic time until which it is known blocked
_last_cleanup = 0.0
CLEANUP_EVERY = 300.0


def define(name: str, limit: int, window: int) -> str:
    """Declare a limit with its default (``limit`` hits per ``window`` seconds)."""
    if limit < 1 or window < 1:
        raise ValueError("a limit needs at least one hit per at least one second")
    with _lock:
        _defaults[name] = Limit(name, limit, window)
    return name


def parse_overrides(text: str) -> dict[str, Limit]:
    """``"member_lookup_miss=30/300, auth_failure=10/60"`` → limits by name."""
    out: dict[str, Limit] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, rest = part.partition("=")
        count, slash, seconds = rest.partition("/")
        if not sep or not slash or not count.strip().isdigit() or not seconds.strip().isdigit():
            raise ValueError(f"KOPILKA_RATE_LIMITS: {part!r} is not name=N/SECONDS")
        lim, win = int(count), int(seconds)
        if lim < 1 or win < 1:
            raise ValueError(f"KOPILKA_RATE_LIMITS: {part!r} needs N >= 1 and SECONDS >= 1")
        out[name.strip()] = Limit(name.strip(), lim, win)
    return out


def get_limit(name: str) -> Limit:
    overrides = parse_overrides(get_settings().rate_limits)
    if name in overrides:
        return overrides[name]
    with _lock:
        if name not in _defaults:
            raise KeyError(f"no rate limit {name!r} is defined")
        return _defaults[name]


def limits() -> list[Limit]:
    """Every declared limit as in force now (defaults with overrides applied)."""
    with _lock:
        names = sorted(_defaults)
    return [get_limit(n) for n in names]


def clear_cache() -> None:
    """Forget what this process knows about blocked subjects (tests, after a reset)."""
    with _lock:
        _blocked.clear()


def bucket_of(name: str, subject: str) -> str:
    return hashlib.sha256(f"{name}\x00{subject}".encode()).hexdigest()


# ---------------------------------------------------------------------- the arithmetic


def allowed(prev: int, count: int, elapsed_ms: int, limit: int, window: int) -> bool:
    """Does the sliding estimate ``prev·(1 − elapsed/window) + count`` stay within ``limit``?

    Exact in integers: both sides are multiplied by the window in milliseconds."""
    w = window * 1000
    return prev * (w - elapsed_ms) + count * w <= limit * w


def retry_after_ms(prev: int, count: int, elapsed_ms: int, limit: int, window: int) -> int:
    """Milliseconds from now until one more hit would be allowed (0 if it is now).

    Exact: the smallest whole ``d`` that satisfies the inequality of ``allowed``."""
    w = window * 1000
    if allowed(prev, count + 1, elapsed_ms, limit, window):
        return 0
    # Still in this window: prev·(w − e − d) ≤ room·w  ⇔  d ≥ w − e − room·w/prev.
    room = limit - count - 1
    if room >= 0 and prev > 0:
        d = w - elapsed_ms - (room * w) // prev
        if 0 <= d < w - elapsed_ms:
            return d
    # In the next window the previous count is this one's:
    # count·(w − e') + w ≤ limit·w  ⇔  e' ≥ w − (limit − 1)·w/count.
    e_next = 0 if count == 0 else max(0, w - ((limit - 1) * w) // count)
    return (w - elapsed_ms) + e_next


# ---------------------------------------------------------------------- storage


def _insert(dialect: str) -> Any:
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


def hit(name: str, subject: str, cost: int = 1, at: float | None = None) -> Decision:
    """Count ``cost`` hits of ``subject`` against limit ``name`` and say whether it is
    within the limit. Commits on its own connection."""
    if not get_settings().rate_limits_enabled:
        return Decision(True, 0, 0.0)
    lim = get_limit(name)
    t = time.time() if at is None else at
    now_ms = int(t * 1000)
    start = (now_ms // 1000) // lim.window * lim.window
    elapsed = now_ms - start * 1000
    bucket = bucket_of(name, subject)
    db = get_db()
    table = RateCounter.__table__
    ins = _insert(db.dialect)(table).values(
        bucket=bucket,
        window_start=start,
        count=cost,
        prev_count=0,
        expires_at=start + 2 * lim.window,
    )
    c = table.c
    stmt = ins.on_conflict_do_update(
        index_elements=[c.bucket],
        set_={
            "prev_count": case(
                (c.window_start == start, c.prev_count),
                (c.window_start == start - lim.window, c.count),
                else_=0,
            ),
            "count": case((c.window_start == start, c.count + cost), else_=cost),
            "window_start": start,
            "expires_at": start + 2 * lim.window,
        },
    ).returning(c.count, c.prev_count)
    with db.engine.begin() as conn:
        count, prev = conn.execute(stmt).one()
    _maybe_cleanup(t)
    ok = allowed(prev, count, elapsed, lim.limit, lim.window)
    estimate = prev * (1 - elapsed / (lim.window * 1000)) + count
    if ok:
        # Full now? Then this process refuses the next hit without asking the database.
        wait_ms = retry_after_ms(prev, count, elapsed, lim.limit, lim.window)
        if wait_ms > 0:
            with _lock:
                _blocked[bucket] = time.monotonic() + wait_ms / 1000
        return Decision(True, 0, estimate)
    # The hit that was refused is counted; the wait is for the next one to pass.
    wait_ms = retry_after_ms(prev, count, elapsed, lim.limit, lim.window)
    seconds = max(1, math.ceil(wait_ms / 1000))
    with _lock:
        _blocked[bucket] = time.monotonic() + seconds
    return Decision(False, seconds, estimate)


def _maybe_cleanup(t: float) -> None:
    global _last_cleanup
    with _lock:
        if t - _last_cleanup < CLEANUP_EVERY:
            return
        _last_cleanup = t
    with get_db().engine.begin() as conn:
        conn.execute(delete(RateCounter).where(RateCounter.expires_at < int(t)))


def blocked_for(name: str, subject: str) -> int:
    """Seconds this process knows ``subject`` stays over limit ``name`` (0: not known)."""
    bucket = bucket_of(name, subject)
    with _lock:
        until = _blocked.get(bucket)
        if until is None:
            return 0
        left = until - time.monotonic()
        if left <= 0:
            del _blocked[bucket]
            return 0
    return max(1, math.ceil(left))


def blocked(name: str, subject: str) -> bool:
    """Cheap check without a database round trip: was ``subject`` refused lately here?"""
    return blocked_for(name, subject) > 0


def problem(name: str, retry_after: int) -> Problem:
    return Problem(
        429,
        "rate_limited",
        f"too many requests ({name}); retry after {retry_after} s",
        extra={"limit": name, "retry_after": retry_after},
        headers={"Retry-After": str(retry_after)},
    )


def enforce(name: str, subject: str, cost: int = 1) -> None:
    """Count a hit; raise 429 ``rate_limited`` with ``Retry-After`` when over the limit."""
    decision = hit(name, subject, cost)
    if not decision.allowed:
        raise problem(name, decision.retry_after)


def count_later(name: str, subjects: Iterable[str]) -> None:
    """Count a hit for each subject after the current request's response (see
    ``RequestFacts.deferred_hits``); past the limit, this process then refuses the subject
    (``enforce_blocked``). Outside a request nothing is counted."""
    facts = context.current()
    if facts is not None:
        facts.deferred_hits.extend((name, s) for s in subjects)


def count_deferred(hits: Iterable[tuple[str, str]]) -> None:
    """Count the hits a request deferred (called by the security middleware)."""
    for name, subject in hits:
        hit(name, subject)


def enforce_blocked(name: str, subjects: Iterable[str]) -> None:
    """Raise 429 if this process knows one of ``subjects`` is over limit ``name``."""
    for s in subjects:
        wait = blocked_for(name, s)
        if wait:
            raise problem(name, wait)


# ---------------------------------------------------------------------- the dependency

PER = ("key", "ip", "member")


def subjects_of(request: Request, per: Iterable[str], principal: Any | None) -> list[str]:
    """The subjects a request counts against: ``key:<id>``, ``ip:<addr>``, ``member:<id>``."""
    out = []
    for what in per:
        if what == "key" and principal is not None and principal.kind == "api_key":
            out.append(f"key:{principal.id}")
        elif what == "key" and principal is not None:
            out.append(f"{principal.kind}:{principal.id}")
        elif what == "ip" and request.client is not None:
            out.append(f"ip:{request.client.host}")
        elif what == "member":
            member = request.path_params.get("member_id")
            if member is None and principal is not None and principal.kind == "member":
                member = principal.id
            if member is not None:
                out.append(f"member:{member}")
    return out


def rate_limit(name: str, *, per: Iterable[str] = ("key", "ip")) -> Callable[..., None]:
    """A dependency counting each request against limit ``name`` for each of ``per``
    (``key``: the API key or session, ``ip``: the address, ``member``: the ``member_id``
    path parameter, else the member signed in). With ``key`` it authenticates the caller
    itself (401 first); without, it suits public routes (``per=("ip", "member")`` for
    sign-in codes asked for a member)."""
    kinds = tuple(per)
    bad = set(kinds) - set(PER)
    if bad or not kinds:
        raise ValueError(f"per must be some of {PER}")
    get_limit(name)  # fail at import time for an undeclared limit

    if "key" not in kinds:

        def limited_anonymous(request: Request) -> None:
            principal = getattr(request.state, "principal", None)
            for subject in subjects_of(request, kinds, principal):
                enforce(name, subject)

        limited_anonymous.__name__ = f"rate_limit_{name}"
        return limited_anonymous

    def limited(request: Request, principal: PrincipalDep) -> None:
        for subject in subjects_of(request, kinds, principal):
            enforce(name, subject)

    limited.__name__ = f"rate_limit_{name}"
    return limited
