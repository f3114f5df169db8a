"""What crosses the API for rules and campaigns (the simulation's: ``purchases/schemas.py``).

A rule and a campaign are answered in the rule language itself (``rules/schema.py``, the
programme file's form), normalised: defaults filled, absent options left out, the key
explicit. These answers are rendered from the dicts the service builds (the key of a rule
whose key came from its name is the last key of its object, as it always was), so the
endpoints declare these models and the tests and the fuzzer hold the answers to them."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from kopilka.spec.rules import CampaignSpec, RuleSpec


class RulesSchemaOut(BaseModel):
    """``GET /rules/schema``: the JSON Schema (draft 2020-12) of the rule language: a
    document with ``rules`` and ``campaigns``, their definitions under ``$defs``."""

    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)
    schema_: str = Field(alias="$schema")
    title: str
    type: Literal["object"]
    properties: dict[str, Any]
    defs: dict[str, Any] = Field(alias="$defs")


class RuleOut(RuleSpec):
    """A rule in force; ``version``: its version (each change of it is one)."""

    version: int | None


class RulePage(BaseModel):
    """The rules in force, in the programme's order (one page: ``next_cursor`` is null)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    items: list[RuleOut]
    next_cursor: str | None


class RuleVersionOut(BaseModel):
    """One definition a rule has had, as it was sent (null: the rule was removed)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    key: str
    version: int
    program_version: int
    removed: bool
    definition: dict[str, Any] | None
    created_at: str
    created_by: str | None


class RuleVersionPage(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    items: list[RuleVersionOut]
    next_cursor: str | None


class CampaignOut(CampaignSpec):
    """A campaign with its state: ``running`` now, ``spent`` of its budget (in
    ``spent_currency``; money when null), ``remaining`` (null: no budget), the
    ``purchases`` it gave on and the keys of its ``rules``."""

    running: bool
    spent: str
    spent_currency: str | None
    remaining: str | None
    purchases: int
    rules: list[str]


class CampaignPage(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    items: list[CampaignOut]
    next_cursor: str | None
