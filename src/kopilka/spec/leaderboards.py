"""The ``leaderboards:`` section of the programme file (issue 22, part 3).

A leaderboard ranks the members who opted in by one metric over a period in the
programme's time zone, for the whole programme or per store. This module holds only the
section's language; ``docs/leaderboards.md`` describes it and ``leaderboards_json_schema()``
is its JSON Schema (``docs/leaderboards.schema.json``). The checks against the rest of the
programme (the points' currency) are in ``validate_leaderboards``, called by
``kopilka.program.service.validate_program``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.json_schema import models_json_schema

if TYPE_CHECKING:
    from kopilka.spec.program import ProgramSpec

BOARD_RE = r"^[a-z0-9][a-z0-9_-]{0,39}$"
# A challenge's code as the challenges' section has it (checked there; here only its form).
CHALLENGE_RE = r"^[a-z0-9][a-z0-9_-]{0,63}$"
Metric = Literal["points_earned", "visits", "spent", "challenge"]
Period = Literal["day", "week", "month", "all"]
MAX_SIZE = 1000


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BoardName(_Strict):
    ru: Annotated[str, Field(min_length=1, max_length=100)]
    en: Annotated[str, Field(min_length=1, max_length=100)]


class LeaderboardSpec(_Strict):
    """One board: ``metric`` (``points_earned`` of ``currency``; ``visits``: receipts;
    ``spent``: money paid; ``challenge``: the progress of the challenge ``challenge``),
    counted per ``period`` (``all``: ever), per store when ``per_store``; ``size``: how
    many are shown at most."""

    code: Annotated[str, Field(pattern=BOARD_RE)]
    name: BoardName
    metric: Metric
    currency: Annotated[str | None, Field(min_length=1, max_length=16)] = None
    challenge: Annotated[str | None, Field(pattern=CHALLENGE_RE)] = None
    period: Period = "month"
    per_store: bool = False
    size: Annotated[int, Field(ge=1, le=MAX_SIZE)] = 100

    @model_validator(mode="after")
    def _metric_needs(self) -> LeaderboardSpec:
        if self.metric == "points_earned" and self.currency is None:
            raise ValueError("metric points_earned needs currency")
        if self.metric != "points_earned" and self.currency is not None:
            raise ValueError(f"currency is only for metric points_earned, not {self.metric}")
        if self.metric == "challenge" and self.challenge is None:
            raise ValueError("metric challenge needs challenge (the challenge's code)")
        if self.metric != "challenge" and self.challenge is not None:
            raise ValueError(f"challenge is only for metric challenge, not {self.metric}")
        return self


def validate_leaderboards(spec: ProgramSpec) -> list[dict[str, Any]]:
    """Checks across sections: codes unique, a points board's currency one of the
    programme's, a challenge board's challenge one of its challenges. Errors name the path
    (``leaderboards[1].currency``)."""
    errors: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, board in enumerate(spec.leaderboards):
        if board.code in seen:
            errors.append(
                {
                    "field": f"leaderboards[{i}].code",
                    "code": "duplicate",
                    "message": f"leaderboard code {board.code!r} is given more than once",
                }
            )
        seen.add(board.code)
        if board.challenge is not None and all(c.code != board.challenge for c in spec.challenges):
            errors.append(
                {
                    "field": f"leaderboards[{i}].challenge",
                    "code": "unknown_challenge",
                    "message": f"no challenge {board.challenge!r}",
                }
            )
        if board.currency is not None and spec.currency(board.currency) is None:
            errors.append(
                {
                    "field": f"leaderboards[{i}].currency",
                    "code": "unknown_currency",
                    "message": f"no currency {board.currency!r}",
                }
            )
    return errors


def leaderboards_json_schema() -> dict[str, Any]:
    """The JSON Schema of the ``leaderboards:`` section (a list of boards)."""
    _, top = models_json_schema([(LeaderboardSpec, "validation")], ref_template="#/$defs/{model}")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Kopilka programme: leaderboards",
        "type": "array",
        "items": {"$ref": "#/$defs/LeaderboardSpec"},
        "$defs": top.get("$defs", {}),
    }
