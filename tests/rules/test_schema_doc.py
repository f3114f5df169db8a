"""The JSON Schema published in docs/ is the one the code validates with."""

from __future__ import annotations

import json
from pathlib import Path

from kopilka.spec.rules import rules_json_schema

DOC = Path(__file__).resolve().parents[2] / "docs" / "rules.schema.json"


def test_the_published_json_schema_is_current() -> None:
    published = json.loads(DOC.read_text(encoding="utf-8"))
    assert published == json.loads(json.dumps(rules_json_schema())), (
        "docs/rules.schema.json is stale: regenerate it (see docs/rules.md)"
    )
