"""Snapshots of the slow reports, so the dashboards open in well under a second at scale.

Three reports need a figure per active member over the period (``active``: distinct
members; ``roi`` and the lift of ``campaigns``: each member's revenue for means and
variances). At a million members that takes seconds whatever the index. So the worker,
right after each rollup, computes them for the dashboards' default view (the 90 days up
to today, no filters) and keeps the answer here; ``reports.service.run`` answers from a
snapshot when its filters, the programme version and the rollup's last run are the ones
it was made with, and computes live otherwise (other periods and filters). A snapshot is
therefore as fresh as the rollup itself, which the dashboards already show ("figures as
of").
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
import zoneinfo
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from kopilka.core.db import now
from kopilka.program.service import current_program
from kopilka.reports.models import ReportSnapshot, RollupState

SLOW = ("active", "roi", "campaigns")


def _encode(value: Any) -> Any:
    """JSON with the types the reports use kept (decimals, dates, times)."""
    if isinstance(value, Decimal):
        return {"$d": str(value)}
    if isinstance(value, dt.datetime):
        return {"$t": value.isoformat()}
    if isinstance(value, dt.date):
        return {"$day": value.isoformat()}
    if isinstance(value, dict):
        return {"$map": [[k, _encode(v)] for k, v in value.items()]}
    if isinstance(value, list | tuple):
        return [_encode(v) for v in value]
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if isinstance(value, dict):
        if "$d" in value:
            return Decimal(value["$d"])
        if "$t" in value:
            return dt.datetime.fromisoformat(value["$t"])
        if "$day" in value:
            return dt.date.fromisoformat(value["$day"])
        if "$map" in value:
            return {k: _decode(v) for k, v in value["$map"]}
    return value


def key_of(filters: Any, program_version: int) -> str:
    raw = json.dumps([filters.as_json(), program_version], sort_keys=True)
    return hashlib.sha256(raw.encode()).hexdigest()


def basis(session: Session) -> str:
    """The rollup's last run, read from the database (not a session's cached object)."""
    value = session.execute(
        select(RollupState.value).where(RollupState.name == "last_run")
    ).scalar_one_or_none()
    return value or ""


def lookup(session: Session, name: str, filters: Any) -> Any | None:
    """The snapshot's report for these filters, if it is still current; else None."""
    from kopilka.reports.service import Report

    if name not in SLOW:
        return None
    version = current_program(session).version
    row = session.execute(
        select(ReportSnapshot.basis, ReportSnapshot.payload).where(
            ReportSnapshot.name == name, ReportSnapshot.key == key_of(filters, version)
        )
    ).one_or_none()
    if row is None or row.basis != basis(session):
        return None
    p = row.payload
    return Report(name, filters, list(p["columns"]), _decode(p["rows"]), _decode(p["summary"]))


def default_filters(session: Session, today: dt.date | None = None) -> Any:
    """The dashboards' default view: the 90 days up to today, no filters."""
    from kopilka.reports.service import parse_filters

    spec = current_program(session).spec
    day = today or now().astimezone(zoneinfo.ZoneInfo(spec.timezone)).date()
    return parse_filters(spec, day)


def refresh(session: Session, filters: Any | None = None) -> dict[str, int]:
    """Compute the slow reports for ``filters`` (the default view by default) and keep them
    (in the caller's transaction). Returns the milliseconds each took."""
    from kopilka.reports.service import REPORTS

    f = filters if filters is not None else default_filters(session)
    program = current_program(session)
    made_on = basis(session)
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    took: dict[str, int] = {}
    for name in SLOW:
        started = time.perf_counter()
        report = REPORTS[name](session, program.spec, f)
        ms = int((time.perf_counter() - started) * 1000)
        values = {
            "name": name,
            "key": key_of(f, program.version),
            "basis": made_on,
            "payload": {
                "columns": report.columns,
                "rows": _encode(report.rows),
                "summary": _encode(report.summary),
            },
            "computed_at": now(),
            "milliseconds": ms,
        }
        ins = insert(ReportSnapshot).values(**values)
        session.execute(
            ins.on_conflict_do_update(
                index_elements=["name", "key"],
                set_={
                    k: ins.excluded[k] for k in ("basis", "payload", "computed_at", "milliseconds")
                },
            )
        )
        took[name] = ms
    return took
