"""Write the JSON Schemas published in docs/ from the models the code validates with.

    PYTHONPATH=src .venv/bin/python -m scripts.json_schemas

Rewrites ``docs/rules.schema.json``, ``docs/referrals.schema.json``,
``docs/challenges.schema.json``, ``docs/leaderboards.schema.json`` and
``docs/rewards.schema.json``; the tests (``tests/rules/test_schema_doc.py`` and each
section's spec tests in ``tests/spec``) fail while a published schema differs from what
this writes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kopilka.spec.challenges import challenges_json_schema
from kopilka.spec.leaderboards import leaderboards_json_schema
from kopilka.spec.referrals import referrals_json_schema
from kopilka.spec.rewards import rewards_json_schema
from kopilka.spec.rules import rules_json_schema

DOCS = Path(__file__).resolve().parents[1] / "docs"
SCHEMAS: dict[str, Callable[[], dict[str, Any]]] = {
    "rules.schema.json": rules_json_schema,
    "referrals.schema.json": referrals_json_schema,
    "leaderboards.schema.json": leaderboards_json_schema,
    "rewards.schema.json": rewards_json_schema,
    "challenges.schema.json": challenges_json_schema,
}


def text(schema: dict[str, Any]) -> str:
    """The published form: sorted keys, two spaces, UTF-8 as is, a final newline."""
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main() -> None:
    for name, make in SCHEMAS.items():
        (DOCS / name).write_text(text(make()), encoding="utf-8")
        print(f"wrote docs/{name}")


if __name__ == "__main__":
    main()
