"""The per-member figures as the reports computed them before the member sets: SQL over
``report_member_days`` (GROUP BY member, COUNT DISTINCT), kept here as the oracle that the
fast path (``kopilka.reports.membersets``) must equal exactly. Each function has the
signature of the one it replaces in ``kopilka.reports.service``."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Numeric, case, cast, func, select, type_coerce
from sqlalchemy.orm import Session

from kopilka.reports.models import MemberDay, ReportMember
from kopilka.reports.service import ACTIVE_WINDOWS, Filters, GroupStats


def _member_days_where(f: Filters, first: dt.date, last: dt.date) -> list[Any]:
    cond: list[Any] = [MemberDay.day.between(first, last)]
    if f.store:
        cond.append(MemberDay.store == f.store)
    if f.channel:
        cond.append(MemberDay.channel == f.channel)
    if f.tier:
        cond.append(MemberDay.tier == f.tier)
    return cond


def active_counts(session: Session, f: Filters) -> tuple[int, dict[int, int]]:
    total = session.execute(
        select(func.count()).where(ReportMember.joined_day <= f.end)
    ).scalar_one()
    counts = {}
    for window in ACTIVE_WINDOWS:
        first = f.end - dt.timedelta(days=window - 1)
        n = session.execute(
            select(func.count(func.distinct(MemberDay.member_id)))
            .join(ReportMember, ReportMember.member_id == MemberDay.member_id)
            .where(*_member_days_where(f, first, f.end), ReportMember.joined_day <= f.end)
        ).scalar_one()
        counts[window] = int(n)
    return int(total), counts


def group_stats(session: Session, f: Filters, cut: int) -> tuple[GroupStats, GroupStats]:
    in_control = ReportMember.bucket < cut
    counts = dict(
        session.execute(
            select(in_control, func.count())
            .where(ReportMember.joined_day <= f.end)
            .group_by(in_control)
        ).all()
    )
    units = type_coerce(func.sum(type_coerce(MemberDay.revenue, BigInteger)), BigInteger)
    per_member = (
        select(MemberDay.member_id.label("member_id"), units.label("rev"))
        .where(MemberDay.day.between(f.start, f.end))
        .group_by(MemberDay.member_id)
        .subquery()
    )
    grp = (ReportMember.bucket < cut).label("grp")
    sums: dict[bool, tuple[int, int]] = {}
    if session.get_bind().dialect.name == "postgresql":
        rev = cast(per_member.c.rev, Numeric)
        q = (
            select(grp, func.sum(rev), func.sum(rev * rev))
            .join(ReportMember, ReportMember.member_id == per_member.c.member_id)
            .where(ReportMember.joined_day <= f.end)
            .group_by(grp)
        )
        for g, s, sq in session.execute(q):
            sums[bool(g)] = (int(s or 0), int(sq or 0))
    else:
        q2 = (
            select(grp, per_member.c.rev)
            .join(ReportMember, ReportMember.member_id == per_member.c.member_id)
            .where(ReportMember.joined_day <= f.end)
        )
        acc: dict[bool, list[int]] = {True: [0, 0], False: [0, 0]}
        for g, r in session.execute(q2):
            a = acc[bool(g)]
            a[0] += int(r)
            a[1] += int(r) * int(r)
        sums = {k: (v[0], v[1]) for k, v in acc.items()}
    scale = Decimal(10_000)

    def stats(control: bool) -> GroupStats:
        s, sq = sums.get(control, (0, 0))
        return GroupStats(
            int(counts.get(control, 0) or 0), Decimal(s) / scale, Decimal(sq) / scale / scale
        )

    return stats(False), stats(True)


def campaign_revenue(
    session: Session, f: Filters, cut: int, reached: Any
) -> tuple[int, Decimal, dict[str, tuple[Decimal, int, Decimal]]]:
    per_member = (
        select(MemberDay.member_id.label("member_id"), func.sum(MemberDay.revenue).label("rev"))
        .where(*_member_days_where(dataclasses.replace(f, tier=None), f.start, f.end))
        .group_by(MemberDay.member_id)
        .subquery()
    )
    outside = ReportMember.bucket >= cut
    active_n, active_rev = session.execute(
        select(func.count(), func.sum(per_member.c.rev))
        .select_from(per_member)
        .join(ReportMember, ReportMember.member_id == per_member.c.member_id)
        .where(outside)
    ).one()
    out: dict[str, tuple[Decimal, int, Decimal]] = {}
    for code, rev, n_out, rev_out in session.execute(
        select(
            reached.c.campaign,
            func.sum(per_member.c.rev),
            func.sum(case((outside, 1), else_=0)),
            func.sum(case((outside, per_member.c.rev), else_=None)),
        )
        .select_from(reached)
        .join(per_member, per_member.c.member_id == reached.c.member_id)
        .join(ReportMember, ReportMember.member_id == reached.c.member_id)
        .group_by(reached.c.campaign)
    ):
        out[str(code)] = (Decimal(rev or 0), int(n_out or 0), Decimal(rev_out or 0))
    return int(active_n), Decimal(active_rev or 0), out
