"""The rule language of the programme file, validated with paths.

This is the seam for the rules engine: a rule is a mapping with a ``name`` and an effect.
The base form of the contract, ``earn: {currency, percent}``, is supported here.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kopilka.core.errors import loc_to_field

if TYPE_CHECKING:
    from kopilka.program.schema import ProgramSpec


class EarnEffect(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    currency: str
    percent: Annotated[Decimal, Field(gt=0, le=100, decimal_places=4)]


class RuleSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: Annotated[str, Field(min_length=1, max_length=200)]
    earn: EarnEffect


def parse_rules(raw: list[dict[str, Any]]) -> list[RuleSpec]:
    return [RuleSpec.model_validate(r) for r in raw]


def validate_rules(spec: ProgramSpec) -> list[dict[str, Any]]:
    errors: list[dict[str, Any]] = []
    for i, raw in enumerate(spec.rules):
        try:
            rule = RuleSpec.model_validate(raw)
        except ValidationError as exc:
            for err in exc.errors():
                _, field = loc_to_field(("body", *err.get("loc", ())))
                path = f"rules[{i}]" + ("" if field == "body" else f".{field}")
                msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
                errors.append({"field": path, "code": str(err.get("type")), "message": msg})
            continue
        if spec.currency(rule.earn.currency) is None:
            errors.append(
                {
                    "field": f"rules[{i}].earn.currency",
                    "code": "unknown_currency",
                    "message": f"no currency {rule.earn.currency!r} in currencies",
                }
            )
    return errors
