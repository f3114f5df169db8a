"""Applying, reading and exporting the programme file."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from kopilka.audit.service import record
from kopilka.core.db import db_key, now
from kopilka.core.errors import Problem, field_error, validation_errors, validation_problem
from kopilka.program.models import Currency, ProgramVersion, Store
from kopilka.spec.challenges import validate_challenges
from kopilka.spec.custom_events import validate_event_rules
from kopilka.spec.leaderboards import validate_leaderboards
from kopilka.spec.program import ProgramSpec
from kopilka.spec.referrals import validate_referrals
from kopilka.spec.rewards import validate_rewards
from kopilka.spec.rules import validate_rules
from kopilka.spec.tiers import validate_tiers

# What other domains do in the transaction of a programme's new version, with its rules,
# its number and the actor (``rules.service.sync_versions``): registered by
# ``kopilka.wiring``, so that the programme imports no domain that imports it.
ApplyHook = Callable[[Session, list[dict[str, Any]], int, str | None], object]
_on_apply: list[ApplyHook] = []


def on_apply(hook: ApplyHook) -> None:
    """Run ``hook`` whenever a new programme version is written (once per hook)."""
    if hook not in _on_apply:
        _on_apply.append(hook)


@dataclass(frozen=True)
class ApplyResult:
    version: int
    changed: bool
    digest: str


def _problem_from_validation(exc: ValidationError, prefix: str = "") -> Problem:
    errors = validation_errors(exc, prefix)
    return Problem(422, "program_invalid", "the programme file has errors", errors=errors)


def parse_program(text: str) -> ProgramSpec:
    """YAML text → a validated ``ProgramSpec`` or a 422 ``program_invalid`` naming each path."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown place"
        raise Problem(
            422,
            "program_invalid",
            f"not valid YAML at {where}",
            errors=[{"field": "$", "code": "yaml", "message": str(exc)}],
        ) from exc
    if not isinstance(data, dict):
        raise Problem(
            422,
            "program_invalid",
            "the programme file must be a mapping",
            errors=[{"field": "$", "code": "type", "message": "expected a mapping at the top"}],
        )
    return validate_program(data)


def validate_program(data: dict[str, Any]) -> ProgramSpec:
    try:
        spec = ProgramSpec.model_validate(data)
    except ValidationError as exc:
        raise _problem_from_validation(exc) from exc

    errors = (
        validate_tiers(spec)
        + validate_rules(spec)
        + validate_event_rules(spec)
        + validate_referrals(spec)
        + validate_leaderboards(spec)
        + validate_rewards(spec)
        + validate_challenges(spec)
    )
    if errors:
        raise Problem(422, "program_invalid", "the programme file has errors", errors=errors)
    return spec


def canonical(spec: ProgramSpec) -> dict[str, Any]:
    return spec.model_dump(mode="json", exclude_none=False)


def digest_of(doc: dict[str, Any]) -> str:
    raw = json.dumps(doc, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()


def apply_program(session: Session, spec: ProgramSpec, actor: str | None = None) -> ApplyResult:
    """Make ``spec`` the programme in force. Applying the same programme again changes
    nothing. Currencies and stores missing from the file are deactivated, never deleted
    (the ledger still refers to them); a currency's precision never changes once set."""
    doc = canonical(spec)
    digest = digest_of(doc)
    current = session.execute(
        select(ProgramVersion).order_by(ProgramVersion.version.desc()).limit(1).with_for_update()
    ).scalar_one_or_none()
    if current is not None and current.digest == digest:
        return ApplyResult(current.version, False, digest)

    existing = {c.code: c for c in session.scalars(select(Currency))}
    errors = []
    for i, c in enumerate(spec.currencies):
        old = existing.get(c.code)
        if old is not None and old.precision != c.precision:
            errors.append(
                {
                    "field": f"currencies[{i}].precision",
                    "code": "immutable",
                    "message": f"the precision of {c.code} is {old.precision} and cannot change",
                }
            )
    if errors:
        raise Problem(422, "program_invalid", "the programme file has errors", errors=errors)

    for c in spec.currencies:
        row = existing.get(c.code) or Currency(code=c.code)
        row.name = c.name
        row.precision = c.precision
        row.value = c.value
        row.pending_days = c.pending_days
        row.expires_after_days = c.expires_after_days
        row.redeem_max_share = c.redeem_max_share
        row.transferable = c.transferable
        row.active = True
        session.add(row)
    for code, row in existing.items():
        if spec.currency(code) is None:
            row.active = False

    stores = {s.code: s for s in session.scalars(select(Store))}
    wanted = {s.code for s in spec.stores}
    for s in spec.stores:
        srow = stores.get(s.code) or Store(code=s.code)
        srow.name = s.name
        srow.timezone = s.timezone
        srow.partner = s.partner
        srow.active = True
        session.add(srow)
    for code, srow in stores.items():
        if code not in wanted:
            srow.active = False

    version = (current.version if current else 0) + 1
    session.add(
        ProgramVersion(
            version=version, name=spec.name, digest=digest, document=doc, applied_by=actor
        )
    )
    session.flush()
    for on_apply in _on_apply:  # the rules number each rule's definitions
        on_apply(session, list(doc.get("rules", [])), version, actor)

    old_doc = current.document if current else {}
    record(
        session,
        actor or "system",
        "program.apply",
        "program",
        str(version),
        before={"version": current.version, "digest": current.digest} if current else None,
        after={"version": version, "digest": digest, "name": spec.name},
        details={"changed": sorted(k for k in {*doc, *old_doc} if doc.get(k) != old_doc.get(k))},
    )
    invalidate_cache()
    return ApplyResult(version, True, digest)


def export_program(session: Session) -> str:
    current = session.execute(
        select(ProgramVersion).order_by(ProgramVersion.version.desc()).limit(1)
    ).scalar_one_or_none()
    if current is None:
        raise Problem(404, "program_not_configured", "no programme has been applied yet")
    return yaml.safe_dump(current.document, sort_keys=False, allow_unicode=True)


@dataclass(frozen=True)
class Program:
    """The programme in force, as the hot path reads it."""

    version: int
    digest: str
    spec: ProgramSpec


_cache_lock = threading.Lock()
_cache: dict[str, tuple[float, Program]] = {}
CACHE_SECONDS = 1.0


def invalidate_cache() -> None:
    with _cache_lock:
        _cache.clear()


def current_program(session: Session) -> Program:
    """The programme in force, cached per engine for ``CACHE_SECONDS`` (a new version
    applied by another process is seen within that time)."""
    key = db_key(session)
    now = time.monotonic()
    with _cache_lock:
        hit = _cache.get(key)
    if hit is not None and now - hit[0] < CACHE_SECONDS:
        return hit[1]
    row = session.execute(
        select(ProgramVersion.version, ProgramVersion.digest)
        .order_by(ProgramVersion.version.desc())
        .limit(1)
    ).first()
    if row is None:
        raise Problem(503, "program_not_configured", "apply a programme file first")
    if hit is not None and hit[1].digest == row.digest and hit[1].version == row.version:
        program = hit[1]
    else:
        doc = session.execute(
            select(ProgramVersion.document).where(ProgramVersion.version == row.version)
        ).scalar_one()
        program = Program(row.version, row.digest, ProgramSpec.model_validate(doc))
    with _cache_lock:
        _cache[key] = (now, program)
    return program


def check_occurred_at(session: Session, at: dt.datetime, field: str = "occurred_at") -> None:
    """Refuse (422 naming ``field``) a receipt's or a custom event's moment that the
    programme's ``clock`` setting finds implausible: older than an offline till may replay,
    or further ahead than a till's clock may drift. Every endpoint that records a moment a
    client gives calls this; what-if simulations do not."""
    refusal = current_program(session).spec.clock.refusal(at, now())
    if refusal is not None:
        code, message = refusal
        raise validation_problem(
            [{**field_error(field, message, code), "in": "body"}],
            f"{field} is not a plausible moment for this programme",
        )
