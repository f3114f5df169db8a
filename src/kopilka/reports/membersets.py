"""Member days in columns: what the reports that need a figure per member read.

``active`` (distinct members over a window), ``roi`` and the lift of ``campaigns`` (each
member's revenue over the period, for means and variances) need one figure per member who
bought. Grouping millions of ``report_member_days`` rows by member in SQL takes seconds at
a million members, whatever the index. So the rollup also keeps each local day's member
days as two arrays (``report_member_sets``): the members' dense numbers and what each paid
that day, grouped by store, channel and tier; and the members' joining day and
control-group bucket by number (``report_member_index``). A report reads the days of its
period, keeps the segments its filters select, and adds up per member with numpy, in
integers: the figures are exactly those of the SQL over ``report_member_days``.

Decoded days stay in this process (``_cache``) until the rollup rewrites them (each row
names the run that wrote it), so a dashboard read again after a rollup rereads only the
days that run redid (today, yesterday, the days with new events).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import BigInteger, LargeBinary, delete, func, insert, literal, select, type_coerce
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.orm import Session

from kopilka.core.db import db_key
from kopilka.reports.models import MemberDay, MemberIndex, MemberSet, ReportMember
from kopilka.reports.shared import as_date

CHUNK = 1 << 16  # members per row of report_member_index
NUMBER = np.dtype("<u4")
UNITS = np.dtype("<i8")
NARROW = np.dtype("<i4")  # revenue units of a day where they all fit
JOINED = np.dtype("<i4")
BUCKET = np.dtype("<i2")
NEVER = np.iinfo(np.int32).max  # the joining day of a number nobody has
CACHE_BYTES = 512 << 20  # decoded days kept per process, least recently used first out
_WRITE_DAYS = 31  # days read from report_member_days at a time by the rollup

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


# ---------------------------------------------------------------------------- writing


def write_days(session: Session, first: dt.date, last: dt.date, run: str) -> None:
    """Rewrite the member sets of the days ``first`` … ``last`` from ``report_member_days``
    (every member of those rows must have a number already)."""
    a = first
    while a <= last:
        b = min(last, a + dt.timedelta(days=_WRITE_DAYS - 1))
        _write_days(session, a, b, run)
        a = b + dt.timedelta(days=1)


def _write_days(session: Session, first: dt.date, last: dt.date, run: str) -> None:
    session.execute(delete(MemberSet).where(MemberSet.day.between(first, last)))
    groups = _groups_pg if session.get_bind().dialect.name == "postgresql" else _groups
    rows: list[dict[str, Any]] = []
    day: dt.date | None = None
    segments: list[list[Any]] = []
    numbers: list[npt.NDArray[np.uint32]] = []
    units: list[IntArray] = []

    def flush() -> None:
        if day is not None and numbers:
            rows.append(
                {
                    "day": day,
                    "run": run,
                    "segments": segments,
                    "members": np.concatenate(numbers).astype(NUMBER).tobytes(),
                    "revenues": _pack_units(np.concatenate(units)),
                }
            )

    for d, store, channel, tier, nums, revs in groups(session, first, last):
        if d != day:
            flush()
            day, segments, numbers, units = d, [], [], []
        segments.append([store, channel, tier, len(nums)])
        numbers.append(nums)
        units.append(revs)
    flush()
    if rows:
        session.execute(insert(MemberSet), rows)


_Group = tuple[dt.date, str, str, str, npt.NDArray[np.uint32], IntArray]


def _groups(session: Session, first: dt.date, last: dt.date) -> Iterator[_Group]:
    """Member days by day, store, channel and tier (in that order), numbers ascending."""
    q = (
        select(
            MemberDay.day,
            MemberDay.store,
            MemberDay.channel,
            MemberDay.tier,
            ReportMember.number,
            type_coerce(MemberDay.revenue, BigInteger),
        )
        .join(ReportMember, ReportMember.member_id == MemberDay.member_id)
        .where(MemberDay.day.between(first, last))
        .order_by(
            MemberDay.day, MemberDay.store, MemberDay.channel, MemberDay.tier, ReportMember.number
        )
    )
    key: tuple[Any, ...] | None = None
    numbers: list[int] = []
    units: list[int] = []
    for d, store, channel, tier, number, revenue in session.execute(q):
        if (d, store, channel, tier) != key:
            if key is not None:
                yield (as_date(key[0]), key[1], key[2], key[3], _u32(numbers), _i64(units))
            key, numbers, units = (d, store, channel, tier), [], []
        numbers.append(int(number))
        units.append(int(revenue))
    if key is not None:
        yield (as_date(key[0]), key[1], key[2], key[3], _u32(numbers), _i64(units))


def _groups_pg(session: Session, first: dt.date, last: dt.date) -> Iterator[_Group]:
    """``_groups`` with PostgreSQL making each group's arrays (big-endian binary, from
    ``int4send``/``int8send``): a row per group crosses over instead of one per member
    day, several times faster on a full rollup."""
    order = aggregate_order_by
    empty = literal(b"", LargeBinary)
    units = type_coerce(MemberDay.revenue, BigInteger)
    q = (
        select(
            MemberDay.day,
            MemberDay.store,
            MemberDay.channel,
            MemberDay.tier,
            func.string_agg(
                func.int4send(ReportMember.number), order(empty, ReportMember.number)
            ).label("numbers"),
            func.string_agg(func.int8send(units), order(empty, ReportMember.number)).label("units"),
        )
        .join(ReportMember, ReportMember.member_id == MemberDay.member_id)
        .where(MemberDay.day.between(first, last))
        .group_by(MemberDay.day, MemberDay.store, MemberDay.channel, MemberDay.tier)
        .order_by(MemberDay.day, MemberDay.store, MemberDay.channel, MemberDay.tier)
    )
    for d, store, channel, tier, numbers, revenues in session.execute(q):
        yield (
            as_date(d),
            store,
            channel,
            tier,
            np.frombuffer(bytes(numbers), dtype=">u4").astype(np.uint32),
            np.frombuffer(bytes(revenues), dtype=">i8").astype(np.int64),
        )


def _u32(values: list[int]) -> npt.NDArray[np.uint32]:
    return np.asarray(values, dtype=np.uint32)


def _i64(values: list[int]) -> IntArray:
    return np.asarray(values, dtype=np.int64)


def _pack_units(units: IntArray) -> bytes:
    """Revenue units as int64, or as int32 when every one fits (the usual case: up to
    214 748 money a member-day), which halves what readers fetch; the width follows from
    the length."""
    wide = units.astype(UNITS)
    if len(wide) and int(wide.min()) >= -(2**31) and int(wide.max()) < 2**31:
        return wide.astype(NARROW).tobytes()
    return wide.tobytes()


def write_index(session: Session, chunks: Iterable[int], run: str) -> None:
    """Rewrite the given chunks of ``report_member_index`` from ``report_members``."""
    for chunk in sorted(set(chunks)):
        lo = chunk * CHUNK
        session.execute(delete(MemberIndex).where(MemberIndex.chunk == chunk))
        found = session.execute(
            select(ReportMember.number, ReportMember.joined_day, ReportMember.bucket).where(
                ReportMember.number >= lo, ReportMember.number < lo + CHUNK
            )
        ).all()
        if not found:
            continue
        size = max(int(n) for n, _, _ in found) - lo + 1
        joined = np.full(size, NEVER, dtype=JOINED)
        buckets = np.zeros(size, dtype=BUCKET)
        for number, joined_day, bucket in found:
            joined[int(number) - lo] = as_date(joined_day).toordinal()
            buckets[int(number) - lo] = int(bucket)
        session.execute(
            insert(MemberIndex).values(
                chunk=chunk, run=run, joined=joined.tobytes(), buckets=buckets.tobytes()
            )
        )


def chunks_to_write(session: Session, numbers: Iterable[int]) -> set[int]:
    """The chunks holding ``numbers``, and any chunk of numbers in use that has no row."""
    top = session.execute(select(func.max(ReportMember.number))).scalar()
    have = set(session.scalars(select(MemberIndex.chunk)))
    wanted = set(range(int(top) // CHUNK + 1)) if top is not None else set()
    return {n // CHUNK for n in numbers} | (wanted - have) | (have - wanted)


# ---------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class Day:
    """One day's member sets, decoded; ``segments``: (store, channel, tier, start, stop)."""

    day: dt.date
    segments: tuple[tuple[str, str, str, int, int], ...]
    members: npt.NDArray[np.uint32]
    revenues: npt.NDArray[np.signedinteger[Any]]  # int32 or int64

    @property
    def ordinal(self) -> int:
        return self.day.toordinal()

    @property
    def nbytes(self) -> int:
        return int(self.members.nbytes + self.revenues.nbytes) + 100 * len(self.segments)

    def slices(self, store: str | None, channel: str | None, tier: str | None) -> list[slice]:
        return [
            slice(a, b)
            for s, c, t, a, b in self.segments
            if (store is None or s == store)
            and (channel is None or c == channel)
            and (tier is None or t == tier)
        ]


def _decode(
    day: dt.date, segments: Sequence[Sequence[Any]], members: bytes, revenues: bytes
) -> Day:
    out: list[tuple[str, str, str, int, int]] = []
    at = 0
    for store, channel, tier, n in segments:
        out.append((str(store), str(channel), str(tier), at, at + int(n)))
        at += int(n)
    numbers = np.frombuffer(members, dtype=NUMBER)
    width = UNITS if len(revenues) == len(numbers) * UNITS.itemsize else NARROW
    return Day(
        day,
        tuple(out),
        numbers,
        np.frombuffer(revenues, dtype=width),  # widened when selected
    )


class _Cache:
    """Decoded rows by (database, table, key), each with the rollup run that wrote it."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self.items: OrderedDict[tuple[str, str, Any], tuple[str, Any, int]] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: tuple[str, str, Any], run: str) -> Any | None:
        with self.lock:
            hit = self.items.get(key)
            if hit is None or hit[0] != run:
                return None
            self.items.move_to_end(key)
            return hit[1]

    def put(self, key: tuple[str, str, Any], run: str, value: Any, nbytes: int) -> None:
        with self.lock:
            old = self.items.pop(key, None)
            if old is not None:
                self.size -= old[2]
            self.items[key] = (run, value, nbytes)
            self.size += nbytes
            while self.size > self.limit and len(self.items) > 1:
                _, (_, _, n) = self.items.popitem(last=False)
                self.size -= n

    def clear(self) -> None:
        with self.lock:
            self.items.clear()
            self.size = 0


_cache = _Cache(CACHE_BYTES)


def _db(session: Session) -> str:
    return db_key(session)


def days(session: Session, first: dt.date, last: dt.date) -> list[Day]:
    """The member sets of the days ``first`` … ``last`` that have any."""
    db = _db(session)
    runs = {
        as_date(d): run
        for d, run in session.execute(
            select(MemberSet.day, MemberSet.run).where(MemberSet.day.between(first, last))
        )
    }
    out: dict[dt.date, Day] = {}
    stale: list[dt.date] = []
    for d, run in runs.items():
        hit = _cache.get((db, "day", d), run)
        if hit is None:
            stale.append(d)
        else:
            out[d] = hit
    if stale:
        wanted = set(stale)
        for d, run, segments, members, revenues in _fetch_days(session, min(stale), max(stale)):
            d = as_date(d)
            if d not in wanted:
                continue
            day = _decode(d, segments, bytes(members), bytes(revenues))
            _cache.put((db, "day", d), run, day, day.nbytes)
            out[d] = day
    return [out[d] for d in sorted(out)]


def _fetch_days(session: Session, first: dt.date, last: dt.date) -> Iterable[Sequence[Any]]:
    """The rows of ``report_member_sets`` of ``first`` … ``last``. On PostgreSQL in binary
    format: bytea as text is hex, twice the bytes and a decoding, the bulk of a cold
    report's time."""
    if session.get_bind().dialect.name == "postgresql":
        raw: Any = session.connection().connection.driver_connection
        with raw.cursor(binary=True) as cur:
            cur.execute(
                "SELECT day, run, segments, members, revenues FROM report_member_sets "
                "WHERE day BETWEEN %s AND %s",
                (first, last),
            )
            return list(cur.fetchall())
    return session.execute(
        select(
            MemberSet.day,
            MemberSet.run,
            MemberSet.segments,
            MemberSet.members,
            MemberSet.revenues,
        ).where(MemberSet.day.between(first, last))
    ).all()


@dataclass(frozen=True)
class Members:
    """Every numbered member: joining day ordinal and control-group bucket, by number."""

    joined: npt.NDArray[np.int32]
    buckets: npt.NDArray[np.int16]

    def __len__(self) -> int:
        return len(self.joined)

    def joined_by(self, day: dt.date) -> BoolArray:
        return self.joined <= day.toordinal()

    def outside(self, cut: int) -> BoolArray:
        """Outside the control group (buckets below ``cut`` form it)."""
        return self.buckets >= cut


def members(session: Session) -> Members:
    """``report_member_index``, whole, as arrays (cached per chunk until rewritten)."""
    db = _db(session)
    runs = {int(c): str(r) for c, r in session.execute(select(MemberIndex.chunk, MemberIndex.run))}
    key = tuple(sorted(runs.items()))
    whole = _cache.get((db, "members", None), repr(key))
    if whole is not None:
        return whole  # type: ignore[no-any-return]
    parts: dict[int, tuple[npt.NDArray[np.int32], npt.NDArray[np.int16]]] = {}
    stale = []
    for chunk, run in runs.items():
        hit = _cache.get((db, "chunk", chunk), run)
        if hit is None:
            stale.append(chunk)
        else:
            parts[chunk] = hit
    if stale:
        for chunk, run, joined, buckets in session.execute(
            select(
                MemberIndex.chunk, MemberIndex.run, MemberIndex.joined, MemberIndex.buckets
            ).where(MemberIndex.chunk.in_(stale))
        ):
            part = (
                np.frombuffer(bytes(joined), dtype=JOINED).astype(np.int32, copy=False),
                np.frombuffer(bytes(buckets), dtype=BUCKET).astype(np.int16, copy=False),
            )
            _cache.put((db, "chunk", chunk), run, part, part[0].nbytes + part[1].nbytes)
            parts[chunk] = part
    joined_parts: list[npt.NDArray[np.int32]] = []
    bucket_parts: list[npt.NDArray[np.int16]] = []
    for chunk in sorted(parts):
        gap = chunk * CHUNK - sum(len(p) for p in joined_parts)
        if gap > 0:  # a chunk with no members (never, unless numbers were skipped)
            joined_parts.append(np.full(gap, NEVER, dtype=np.int32))
            bucket_parts.append(np.zeros(gap, dtype=np.int16))
        joined_parts.append(parts[chunk][0])
        bucket_parts.append(parts[chunk][1])
    result = Members(
        np.concatenate(joined_parts) if joined_parts else np.zeros(0, dtype=np.int32),
        np.concatenate(bucket_parts) if bucket_parts else np.zeros(0, dtype=np.int16),
    )
    _cache.put((db, "members", None), repr(key), result, 0)
    return result


# ---------------------------------------------------------------------------- figures


@dataclass(frozen=True)
class Selection:
    """The member-day entries of some days that some filters keep."""

    numbers: npt.NDArray[np.unsignedinteger[Any]] | npt.NDArray[np.intp]
    revenues: IntArray

    @classmethod
    def of(
        cls,
        days_: Sequence[Day],
        store: str | None = None,
        channel: str | None = None,
        tier: str | None = None,
    ) -> Selection:
        nums: list[npt.NDArray[np.uint32]] = []
        revs: list[npt.NDArray[np.signedinteger[Any]]] = []
        for day in days_:
            for s in day.slices(store, channel, tier):
                nums.append(day.members[s])
                revs.append(day.revenues[s])
        if not nums:
            return cls(np.zeros(0, dtype=np.uint32), np.zeros(0, dtype=np.int64))
        return cls(np.concatenate(nums), np.concatenate(revs).astype(np.int64, copy=False))

    def size(self, population: int) -> int:
        """The length of per-member arrays that covers every number seen."""
        top = int(self.numbers.max()) + 1 if len(self.numbers) else 0
        return max(population, top)

    def present(self, size: int) -> BoolArray:
        """By number: whether the member has any entry."""
        mask = np.zeros(size, dtype=np.bool_)
        mask[self.numbers] = True
        return mask

    def per_member(self, size: int) -> IntArray:
        """By number: the sum of the member's revenue (units), exactly."""
        total = np.zeros(size, dtype=np.int64)
        if len(self.revenues) == 0:
            return total
        if int(np.abs(self.revenues).max()) * len(self.revenues) < 1 << 62:
            np.add.at(total, self.numbers, self.revenues)  # no partial sum can wrap
            return total
        # Huge amounts: the high and the low 32 bits of each added up apart.
        high = self.revenues >> 32
        low = self.revenues - (high << 32)
        np.add.at(total, self.numbers, high)
        if int(np.abs(total).max()) >= 1 << 30:
            raise OverflowError("a member's revenue over the period passes 2⁶² units")
        total <<= 32
        np.add.at(total, self.numbers, low)
        return total


def exact_sum(values: IntArray) -> int:
    """The sum of int64 values as a Python integer, never wrapping around."""
    return exact_dot(values, np.ones(len(values), dtype=np.int64))


def exact_dot(a: IntArray, b: IntArray) -> int:
    """Σ aᵢ·bᵢ of int64 arrays as a Python integer, never wrapping around: numpy adds up
    in 64 bits when no partial sum can overflow; otherwise both operands are cut in limbs
    of k bits small enough for that, and the limbs' products are shifted back together."""
    n = len(a)
    if n == 0:
        return 0
    ma, mb = int(np.abs(a).max()), int(np.abs(b).max())
    if n * ma * mb < 1 << 62:
        return int(np.dot(a, b))
    k = max(1, (62 - n.bit_length()) // 2 - 1)
    total = 0
    for i, x in enumerate(_limbs(a, k)):
        for j, y in enumerate(_limbs(b, k)):
            total += int(np.dot(x, y)) << (k * (i + j))
    return total


def _limbs(values: IntArray, k: int) -> list[IntArray]:
    """``values`` = Σ limbᵢ·2^(k·i), each limb within ±2ᵏ (only the last may be negative)."""
    out: list[IntArray] = []
    rest = values
    while int(np.abs(rest).max()) >= 1 << k:
        high = rest >> k
        out.append(rest - (high << k))
        rest = high
    out.append(rest)
    return out


__all__ = [
    "CHUNK",
    "Day",
    "Members",
    "Selection",
    "chunks_to_write",
    "days",
    "exact_dot",
    "exact_sum",
    "members",
    "write_days",
    "write_index",
]
