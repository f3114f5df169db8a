"""Every JSON answer of the API has a response model in the OpenAPI document.

An answer declared as ``dict[str, Any]`` (``{"type": "object", "additionalProperties":
true}``) or with no schema at all says nothing about its fields; clients, the docs and the
fuzzer (``tests/security/test_fuzz.py``, which checks every answer against its schema)
need the fields, their types and which may be null."""

from __future__ import annotations

from typing import Any

from kopilka.main import create_app

# (method, path, status, content type) of answers that are not JSON objects with a model,
# and why. Answers of other content types (CSV, PDF, images, YAML) are files, not JSON.
EXCEPTIONS: dict[tuple[str, str, str, str], str] = {}


def _modelled(schema: dict[str, Any] | None) -> bool:
    """A reference to a component model, a list of them, or a choice between them."""
    if not schema:
        return False
    if "$ref" in schema:
        return True
    if schema.get("type") == "array":
        return _modelled(schema.get("items"))
    choices = schema.get("anyOf") or schema.get("oneOf")
    if choices:
        return all(_modelled(c) for c in choices)
    return False


def json_answers_without_model() -> list[tuple[str, str, str, str]]:
    spec = create_app().openapi()
    missing = []
    for path, item in spec["paths"].items():
        for method, op in item.items():
            for status, answer in op["responses"].items():
                for ctype, body in answer.get("content", {}).items():
                    key = (method.upper(), path, status, ctype)
                    if ctype.endswith("json") and not _modelled(body.get("schema")):
                        missing.append(key)
    return [k for k in missing if k not in EXCEPTIONS]


def test_every_json_answer_has_a_response_model() -> None:
    # given the API's OpenAPI document; when its JSON answers are read
    missing = json_answers_without_model()
    # then each names a model (listed here if not)
    assert missing == []


def test_a_free_form_object_is_not_a_model() -> None:
    # given the schemas FastAPI writes for dict[str, Any] and for no annotation
    free = {"type": "object", "additionalProperties": True, "title": "Response"}
    # then neither counts as a model; a reference, a list or a choice of them does
    assert (_modelled(free), _modelled({}), _modelled(None)) == (False, False, False)
    ref = {"$ref": "#/components/schemas/PurchaseOut"}
    assert _modelled(ref) and _modelled({"type": "array", "items": ref})
    assert _modelled({"anyOf": [ref, ref]}) and not _modelled({"anyOf": [ref, free]})
