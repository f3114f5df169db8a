"""The slow reports' snapshots: made by the rollup for the dashboards' default view, used
only while current, always equal to the live figures."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select, update

from kopilka.core.db import Database
from kopilka.program.service import current_program
from kopilka.reports import service as reports
from kopilka.reports import snapshots
from kopilka.reports.jobs import run_rollup
from kopilka.reports.models import ReportSnapshot, RollupState
from tests.reports.test_report_figures import figures

__all__ = ["figures"]  # the fixture, imported to be used here


def _live(db: Database, name: str, f: Any) -> dict[str, Any]:
    with db.session() as s:
        return reports.REPORTS[name](s, current_program(s).spec, f).as_json()


def _served(db: Database, name: str, f: Any) -> dict[str, Any]:
    with db.session() as s:
        return reports.run(s, name, f).as_json()


def test_the_rollup_leaves_snapshots_equal_to_the_live_figures(db: Database, figures: Any) -> None:
    # given the data set, rolled up (which also refreshes the snapshots)
    with db.session() as s:
        f = snapshots.default_filters(s)
        kept = set(s.scalars(select(ReportSnapshot.name)))
    # then each slow report has its snapshot, and it answers exactly the live figures
    assert kept == {"active", "roi", "campaigns"}
    for name in snapshots.SLOW:
        assert _served(db, name, f) == _live(db, name, f), name


def test_a_snapshot_is_used_only_while_the_rollup_it_was_made_on_is_the_last(
    db: Database, figures: Any
) -> None:
    with db.session() as s:
        f = snapshots.default_filters(s)
    live = _live(db, "active", f)
    # given a snapshot marked so that its use shows
    with db.session() as s:
        row = s.execute(select(ReportSnapshot).where(ReportSnapshot.name == "active")).scalar_one()
        payload = dict(row.payload)
        payload["summary"] = {"$map": [["marker", 1]]}
        row.payload = payload
        s.commit()
    # then the default view is answered from it
    assert _served(db, "active", f)["summary"] == {"marker": 1}
    # and another period is computed live
    other = reports.Filters(f.start + dt.timedelta(days=1), f.end)
    assert _served(db, "active", other) == _live(db, "active", other)
    # when the rollup moved on without it (another process, say), it is not used
    with db.session() as s:
        s.execute(
            update(RollupState)
            .where(RollupState.name == "last_run")
            .values(value=dt.datetime(2030, 1, 1, tzinfo=dt.UTC).isoformat())
        )
        s.commit()
    assert _served(db, "active", f) == live
    # and the next rollup makes it again, current
    run_rollup(settle_seconds=0)
    assert _served(db, "active", f) == live
    with db.session() as s:
        assert "marker" not in str(
            s.scalar(select(ReportSnapshot.payload).where(ReportSnapshot.name == "active"))
        )
