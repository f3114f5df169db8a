"""A challenge drafted outside the programme file (the console's form, the simulation's
API) checked the way the file is: put in the programme in force (in place of the one with
its code, or after the others) and the whole programme validated by
``program.service.validate_program`` — the spec's models and every check across
sections — with each error's path said from the challenge (``goal.target``, not
``challenges[2].goal.target``). The diff shows what publishing it would change."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any

import yaml

from kopilka.core.errors import Problem
from kopilka.program.service import canonical, validate_program
from kopilka.spec.challenges import ChallengeSpec
from kopilka.spec.program import ProgramSpec


@dataclass(frozen=True)
class Draft:
    spec: ProgramSpec  # the programme with the challenge in it
    challenge: ChallengeSpec
    index: int
    replaces: bool  # a challenge with this code was there


def _place(
    doc: dict[str, Any], challenge: dict[str, Any], replacing: str | None
) -> tuple[int, bool]:
    items: list[dict[str, Any]] = list(doc.get("challenges") or [])
    codes = [c.get("code") for c in items]
    key = replacing or challenge.get("code")
    if key in codes:
        i = codes.index(key)
        items[i] = challenge
        doc["challenges"] = items
        return i, True
    items.append(challenge)
    doc["challenges"] = items
    return len(items) - 1, False


def relative(errors: list[dict[str, Any]], index: int, prefix: str = "") -> list[dict[str, Any]]:
    """The errors of ``challenges[index]`` with the path from the challenge (``prefix``
    before it); the others' errors (another section the draft breaks) kept as they are."""
    at = re.compile(rf"^challenges\[{index}\](?:\.|$)")
    out = []
    for e in errors:
        f = str(e.get("field", "$"))
        if at.match(f):
            rest = at.sub("", f)
            f = f"{prefix}{rest}" if rest else (prefix.rstrip(".") or "$")
        out.append({**e, "field": f})
    return out


def with_challenge(
    current: ProgramSpec, challenge: dict[str, Any], replacing: str | None = None, prefix: str = ""
) -> Draft:
    """``current`` with ``challenge`` (its document, as in the file) in it, validated; a 422
    ``program_invalid`` whose errors name the challenge's fields (after ``prefix``)."""
    doc = canonical(current)
    i, replaces = _place(doc, challenge, replacing)
    try:
        spec = validate_program(doc)
    except Problem as exc:
        exc.errors = relative(exc.errors or [], i, prefix)
        raise
    return Draft(spec, spec.challenges[i], i, replaces)


def as_yaml(spec: ProgramSpec) -> str:
    return yaml.safe_dump(canonical(spec), sort_keys=False, allow_unicode=True)


def diff(before: ProgramSpec, after: ProgramSpec, before_name: str, after_name: str) -> list[str]:
    """The unified diff of the two programmes' files (as ``kopilka program export``
    writes them), line by line."""
    return list(
        difflib.unified_diff(
            as_yaml(before).splitlines(),
            as_yaml(after).splitlines(),
            before_name,
            after_name,
            lineterm="",
            n=3,
        )
    )
