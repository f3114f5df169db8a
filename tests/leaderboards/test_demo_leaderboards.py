"""The demo's leaderboards: members opted in over receipts already scored."""

from __future__ import annotations

from kopilka.core.db import Database
from kopilka.demo.seed import demo_program_text, seed_history, seed_leaderboards, seed_members
from kopilka.leaderboards import service
from kopilka.program.service import apply_program, current_program, invalidate_cache, parse_program


def test_the_demo_has_members_on_its_leaderboards(db: Database) -> None:
    # given the demo programme, its members and their receipts
    with db.session() as s:
        apply_program(s, parse_program(demo_program_text()), actor="test")
        s.commit()
    invalidate_cache()
    seed_members(40)
    seed_history()
    # when some of them opt in
    joined = seed_leaderboards()
    # then the all-time board of BONUS shows them, ranked 1, 2, 3 … by value
    with db.session() as s:
        spec = current_program(s).spec
        board = service.board_of(spec, "bonus-ever")
        top = service.top(s, service.where(spec, board, None, None), 50)
    assert joined > 5
    assert [r["rank"] for r in top] == list(range(1, len(top) + 1))
    assert len(top) > 5
    values = [r["value"] for r in top]
    assert values == sorted(values, reverse=True)
