"""Rules in the database: versions, the member context the engine needs, caps and campaign
budgets, editing rules and campaigns over the API (each edit is a new programme version).

The rules themselves live in the programme (``rules:`` and ``campaigns:``); every applied
programme version is kept, and ``rule_versions`` numbers each distinct definition a rule has
had, so a purchase names the exact versions that priced it.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import uuid
import zoneinfo
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import Select, and_, bindparam, func, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from kopilka.core import dates
from kopilka.core.db import Amount, now
from kopilka.core.errors import Problem
from kopilka.core.money import fmt
from kopilka.core.plan import Plan, table
from kopilka.members.queries import Member
from kopilka.program.queries import latest_version
from kopilka.program.service import apply_program, current_program, validate_program
from kopilka.rules import engine
from kopilka.rules.models import CampaignSpend, PurchaseRule, RuleUsage, RuleVersion
from kopilka.spec.control_group import in_control_group
from kopilka.spec.rules import RuleSpec

ZERO = Decimal(0)


def _digest(doc: dict[str, Any] | None) -> str:
    raw = json.dumps(doc, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(raw.encode()).hexdigest()


def _normalised(raw: dict[str, Any]) -> dict[str, Any]:
    """A rule as the API shows it: validated, defaults filled, its key explicit."""
    rule = RuleSpec.model_validate(raw)
    doc = rule.model_dump(mode="json", by_alias=True, exclude_none=True)
    doc["key"] = rule.rule_key
    return doc


# ---------------------------------------------------------------------------- versions


def latest_versions(session: Session) -> dict[str, tuple[int, str, bool]]:
    """Rule key → (latest version, digest, removed)."""
    sub = (
        select(RuleVersion.key, func.max(RuleVersion.version).label("v"))
        .group_by(RuleVersion.key)
        .subquery()
    )
    rows = session.execute(
        select(
            RuleVersion.key, RuleVersion.version, RuleVersion.digest, RuleVersion.definition
        ).join(sub, and_(sub.c.key == RuleVersion.key, sub.c.v == RuleVersion.version))
    ).all()
    return {r.key: (r.version, r.digest, r.definition is None) for r in rows}


def sync_versions(
    session: Session, rules: list[dict[str, Any]], program_version: int, actor: str | None
) -> dict[str, int]:
    """Record a new version of every rule whose definition changed in this programme
    version (and a removal for every rule that left it). Returns key → version in force."""
    latest = latest_versions(session)
    in_force: dict[str, int] = {}
    at = now()
    for raw in rules:
        doc = _normalised(raw)
        key = doc["key"]
        digest = _digest(doc)
        version, old_digest, removed = latest.get(key, (0, "", True))
        if version and old_digest == digest and not removed:
            in_force[key] = version
            continue
        session.add(
            RuleVersion(
                key=key,
                version=version + 1,
                program_version=program_version,
                digest=digest,
                definition=doc,
                created_at=at,
                created_by=actor,
            )
        )
        in_force[key] = version + 1
    for key, (version, _, removed) in latest.items():
        if key not in in_force and not removed:
            session.add(
                RuleVersion(
                    key=key,
                    version=version + 1,
                    program_version=program_version,
                    digest=_digest(None),
                    definition=None,
                    created_at=at,
                    created_by=actor,
                )
            )
    session.flush()
    return in_force


def versions_in_force(session: Session, rules: list[dict[str, Any]]) -> dict[str, int]:
    """Key → version of each rule of the programme in force (for the engine to report)."""
    latest = latest_versions(session)
    out = {}
    for raw in rules:
        doc = _normalised(raw)
        hit = latest.get(doc["key"])
        # a draft's changed rule has no version yet: only an identical definition has one
        if hit is not None and not hit[2] and hit[1] == _digest(doc):
            out[doc["key"]] = hit[0]
    return out


def rule_history(session: Session, key: str) -> list[RuleVersion]:
    rows = list(
        session.scalars(
            select(RuleVersion).where(RuleVersion.key == key).order_by(RuleVersion.version.desc())
        )
    )
    if not rows:
        raise Problem(404, "rule_not_found", f"no rule {key!r}")
    return rows


# ---------------------------------------------------------------------------- editing


def current_document(session: Session, lock: bool = False) -> tuple[int, dict[str, Any]]:
    """The programme in force: its version and a copy of its document to edit. ``lock``
    takes the row's lock, so that two edits never publish over each other."""
    row = latest_version(session, lock)
    if row is None:
        raise Problem(503, "program_not_configured", "apply a programme file first")
    return row.version, copy.deepcopy(row.document)


def _publish(session: Session, doc: dict[str, Any], actor: str, prefix: str) -> int:
    """Validate and apply an edited programme; validation errors keep the edited item's
    path (``rules[3].earn.percent`` becomes ``earn.percent`` for the item sent)."""
    try:
        spec = validate_program(doc)
    except Problem as exc:
        errors = []
        for e in exc.errors or []:
            f = str(e.get("field", "$"))
            if prefix and f.startswith(prefix):
                f = f[len(prefix) :].lstrip(".") or "$"
            errors.append({**e, "field": f})
        raise Problem(422, "validation_error", "the rule is not valid", errors=errors) from exc
    return apply_program(session, spec, actor=actor).version


def current_rules(session: Session) -> list[dict[str, Any]]:
    """The rules in force, normalised, each with its version."""
    _, doc = current_document(session)
    rules = [_normalised(r) for r in doc.get("rules", [])]
    versions = latest_versions(session)
    for r in rules:
        v = versions.get(r["key"])
        r["version"] = v[0] if v else None
    return rules


def get_rule(session: Session, key: str) -> dict[str, Any]:
    for r in current_rules(session):
        if r["key"] == key:
            return r
    raise Problem(404, "rule_not_found", f"no rule {key!r} in the programme in force")


def _index_of(rules: list[dict[str, Any]], key: str) -> int | None:
    for i, r in enumerate(rules):
        try:
            if RuleSpec.model_validate(r).rule_key == key:
                return i
        except ValueError:
            continue
    return None


def create_rule(session: Session, definition: dict[str, Any], actor: str) -> dict[str, Any]:
    """Add a rule to the programme (a new programme version). 409 if its key is taken."""
    _, doc = current_document(session, lock=True)
    rules = list(doc.get("rules", []))
    try:
        key = RuleSpec.model_validate(definition).rule_key
    except ValueError:
        key = None
    if key is not None and _index_of(rules, key) is not None:
        raise Problem(409, "rule_exists", f"a rule with key {key!r} exists; PUT it to change it")
    rules.append(definition)
    doc["rules"] = rules
    _publish(session, doc, actor, f"rules[{len(rules) - 1}]")
    return get_rule(session, str(key))


def put_rule(session: Session, key: str, definition: dict[str, Any], actor: str) -> dict[str, Any]:
    """Replace (or add) the rule ``key``; its key is forced to ``key``."""
    _, doc = current_document(session, lock=True)
    rules = list(doc.get("rules", []))
    at = _put(rules, _index_of(rules, key), {**definition, "key": key})
    doc["rules"] = rules
    _publish(session, doc, actor, f"rules[{at}]")
    return get_rule(session, key)


def _put(items: list[dict[str, Any]], at: int | None, item: dict[str, Any]) -> int:
    """Replace ``items[at]`` with ``item``, or append it when ``at`` is None; its index."""
    if at is None:
        items.append(item)
        return len(items) - 1
    items[at] = item
    return at


def delete_rule(session: Session, key: str, actor: str) -> None:
    _, doc = current_document(session, lock=True)
    rules = list(doc.get("rules", []))
    at = _index_of(rules, key)
    if at is None:
        raise Problem(404, "rule_not_found", f"no rule {key!r} in the programme in force")
    del rules[at]
    doc["rules"] = rules
    _publish(session, doc, actor, "")


def put_campaign(
    session: Session, code: str, definition: dict[str, Any], actor: str
) -> dict[str, Any]:
    _, doc = current_document(session, lock=True)
    camps = list(doc.get("campaigns", []))
    found = next((i for i, c in enumerate(camps) if c.get("code") == code), None)
    at = _put(camps, found, {**definition, "code": code})
    doc["campaigns"] = camps
    _publish(session, doc, actor, f"campaigns[{at}]")
    return campaign_report(session, code)


def delete_campaign(session: Session, code: str, actor: str) -> None:
    _, doc = current_document(session, lock=True)
    camps = list(doc.get("campaigns", []))
    at = next((i for i, c in enumerate(camps) if c.get("code") == code), None)
    if at is None:
        raise Problem(404, "campaign_not_found", f"no campaign {code!r}")
    users = [r.get("name") for r in doc.get("rules", []) if r.get("campaign") == code]
    if users:
        raise Problem(
            409,
            "campaign_in_use",
            f"rules still belong to campaign {code!r}: {', '.join(map(str, users))}",
        )
    del camps[at]
    doc["campaigns"] = camps
    _publish(session, doc, actor, "")


def campaigns(session: Session) -> list[dict[str, Any]]:
    program = current_program(session)
    compiled = engine.compile_rules(program.spec)
    given: dict[str, tuple[str | None, Decimal]] = {}
    for code, unit, total in session.execute(
        select(PurchaseRule.campaign, PurchaseRule.unit, func.sum(PurchaseRule.amount))
        .where(PurchaseRule.campaign.is_not(None), PurchaseRule.released.is_(False))
        .group_by(PurchaseRule.campaign, PurchaseRule.unit)
    ).all():
        given[str(code)] = (unit, Decimal(total))
    counts = dict(
        session.execute(
            select(PurchaseRule.campaign, func.count(func.distinct(PurchaseRule.purchase_id)))
            .where(PurchaseRule.campaign.is_not(None), PurchaseRule.released.is_(False))
            .group_by(PurchaseRule.campaign)
        ).all()
    )
    places = {code: c.precision for code, c in compiled.currencies.items()}
    at = now()
    out = []
    for code, c in compiled.campaigns.items():
        spent_unit, used = given.get(code, (c.budget.currency if c.budget else None, ZERO))
        budget = c.budget.amount if c.budget else None
        running = (
            c.active
            and (c.starts_at is None or c.starts_at <= at)
            and (c.ends_at is None or at < c.ends_at)
        )
        out.append(
            {
                **c.model_dump(mode="json", by_alias=True, exclude_none=True),
                "running": running,
                "spent": fmt(used, places.get(spent_unit or "", 2)),
                "spent_currency": spent_unit,
                "remaining": None
                if budget is None
                else fmt(max(budget - used, ZERO), places.get(spent_unit or "", 2)),
                "purchases": int(counts.get(code, 0)),
                "rules": [r.key for r in compiled.rules if r.campaign and r.campaign.code == code],
            }
        )
    return out


def campaign_report(session: Session, code: str) -> dict[str, Any]:
    for c in campaigns(session):
        if c["code"] == code:
            return c
    raise Problem(404, "campaign_not_found", f"no campaign {code!r}")


# ---------------------------------------------------------------------------- context


def period_start(period: str, day: dt.date) -> dt.date:
    if period == "day":
        return day
    if period == "week":
        return day - dt.timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    return day.replace(month=1, day=1)


def local_day(at: dt.datetime, timezone: str) -> dt.date:
    """The programme's calendar day of ``at`` (never overflowing: ``core.dates``)."""
    return dates.local_day(at, zoneinfo.ZoneInfo(timezone))


class PurchaseHistory(Protocol):
    """What the rules read of purchases: ``kopilka.purchases.queries`` supplies it through
    ``kopilka.wiring`` (the purchases package draws on the rules, so this one cannot
    import it)."""

    def member_history(self) -> tuple[Select[int, Decimal], Select[Decimal], Select[int]]:
        """A member's confirmed purchases (count and total paid), what their returns
        refunded, and the count alone; bound as ``member_id`` and ``exclude`` (a purchase
        to leave out, or NULL)."""
        ...


_history: list[PurchaseHistory] = []


def use_purchase_history(history: PurchaseHistory) -> None:
    """Say where the purchases' history is read (``wiring.wire``)."""
    _history[:] = [history]


def _history_statements() -> tuple[Select[int, Decimal], Select[Decimal], Select[int]]:
    if not _history:
        raise RuntimeError("no purchase history: kopilka.wiring.wire() was not called")
    return _history[0].member_history()


def member_context(
    session: Session,
    member: Member,
    compiled: engine.CompiledRules,
    spec: Any,
    occurred_at: dt.datetime,
    exclude_purchase: uuid.UUID | None = None,
) -> engine.MemberContext:
    """What the engine knows of a member: tier, tags, dates, personal discount, control
    group, and (only when some rule looks at them) the purchase count, lifetime spend and
    what capped rules already gave in their period."""
    count = 0
    spend = ZERO
    if compiled.needs_history:
        params = {"member_id": member.id, "exclude": exclude_purchase}
        if compiled.needs_spend:
            count_total, refunds, _ = _history_statements()
            n, total = session.execute(count_total, params).one()
            refunded = session.execute(refunds, params).scalar_one()
            count, spend = int(n), Decimal(total) - Decimal(refunded)
        else:
            count = int(session.execute(_history_statements()[2], params).scalar_one())
    usage: Mapping[str, Decimal] = {}
    if compiled.member_capped:
        day = local_day(occurred_at, spec.timezone)
        usage = Lazy(lambda: _usage(session, member.id, compiled.member_capped, day))
    return context_of(member, spec, count, spend, usage)


def context_of(
    member: Any, spec: Any, count: int, spend: Decimal, usage: Mapping[str, Decimal]
) -> engine.MemberContext:
    """The engine's ``MemberContext`` of ``member`` (a ``Member``, or a row with its
    ``id``, ``tier``, ``tags``, ``birth_date``, ``created_at`` and ``personal_discount``),
    with the history and cap usage already read."""
    return engine.MemberContext(
        id=member.id,
        tier=member.tier,
        tags=frozenset(member.tags or ()),
        birth_date=member.birth_date,
        joined_at=member.created_at,
        purchases_count=count,
        lifetime_spend=spend,
        personal_discount=member.personal_discount,
        control_group=in_control_group(member.id, spec.control_group_share),
        usage=usage,
    )


def context_columns(compiled: engine.CompiledRules) -> list[Any]:
    """For a statement that reads a receipt's whole context at once (the hot path, on
    PostgreSQL): labelled scalar subqueries of what the engine may need of the member
    bound as ``member_id`` — the history if a rule looks at it (``exclude`` bound to
    None), what each capped rule gave in its period, what each budgeted campaign has
    spent. Their other parameters come from ``context_params``; ``read_context`` reads
    them back. Building them costs more than running them: build once per programme."""
    cols: list[Any] = []
    if compiled.needs_history:
        count_total, refunds, count_only = _history_statements()
        cols.append(count_only.scalar_subquery().label("r_count"))
        if compiled.needs_spend:
            total = count_total.selected_columns[1]
            cols.append(count_total.with_only_columns(total).scalar_subquery().label("r_total"))
            cols.append(refunds.scalar_subquery().label("r_refunded"))
    for i, _ in enumerate(sorted(compiled.member_capped)):
        cols.append(
            select(RuleUsage.amount)
            .where(
                RuleUsage.rule_key == bindparam(f"r_u{i}_key"),
                RuleUsage.member_id == bindparam("member_id"),
                RuleUsage.period_start == bindparam(f"r_u{i}_start"),
            )
            .scalar_subquery()
            .label(f"r_u{i}")
        )
    for i, _ in enumerate(sorted(compiled.budgeted)):
        cols.append(
            select(CampaignSpend.spent)
            .where(CampaignSpend.code == bindparam(f"r_c{i}_code"))
            .scalar_subquery()
            .label(f"r_c{i}")
        )
    return cols


def context_params(compiled: engine.CompiledRules, day: dt.date) -> dict[str, Any]:
    """The parameters of ``context_columns`` for a receipt of local ``day``."""
    params: dict[str, Any] = {"exclude": None}
    for i, key in enumerate(sorted(compiled.member_capped)):
        params[f"r_u{i}_key"] = key
        params[f"r_u{i}_start"] = period_start(compiled.member_capped[key], day)
    for i, code in enumerate(sorted(compiled.budgeted)):
        params[f"r_c{i}_code"] = code
    return params


def read_context(
    row: Any, compiled: engine.CompiledRules
) -> tuple[int, Decimal, dict[str, Decimal], dict[str, Decimal]]:
    """``context_columns`` read back: the member's purchase count and lifetime spend, what
    capped rules gave (rules that gave nothing yet left out, as ``_usage`` does), and what
    budgeted campaigns spent (0 for a campaign without a row yet, as ``campaign_spent``)."""
    m = row._mapping
    count = int(m["r_count"]) if compiled.needs_history else 0
    spend = ZERO
    if compiled.needs_spend:
        spend = Decimal(m["r_total"]) - Decimal(m["r_refunded"])
    usage = {
        key: m[f"r_u{i}"]
        for i, key in enumerate(sorted(compiled.member_capped))
        if m[f"r_u{i}"] is not None
    }
    spent = {
        code: ZERO if m[f"r_c{i}"] is None else m[f"r_c{i}"]
        for i, code in enumerate(sorted(compiled.budgeted))
    }
    return count, spend, usage, spent


class Lazy(Mapping[str, Decimal]):
    """Figures read from the database only if the engine asks for one: what capped rules
    already gave a member, what budgeted campaigns have spent. Most receipts fire no such
    rule, and then cost no query."""

    def __init__(self, load: Callable[[], dict[str, Decimal]]) -> None:
        self._load_once = load
        self._values: dict[str, Decimal] | None = None

    def _load(self) -> dict[str, Decimal]:
        if self._values is None:
            self._values = self._load_once()
        return self._values

    def __getitem__(self, key: str) -> Decimal:
        return self._load()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._load())

    def __len__(self) -> int:
        return len(self._load())


def _usage(
    session: Session, member_id: uuid.UUID, capped: dict[str, str], day: dt.date
) -> dict[str, Decimal]:
    """What each capped rule already gave the member in its period containing ``day``."""
    wanted = {(k, period_start(p, day)) for k, p in capped.items()}
    rows = session.execute(
        select(RuleUsage.rule_key, RuleUsage.period_start, RuleUsage.amount).where(
            RuleUsage.member_id == member_id,
            RuleUsage.rule_key.in_(list(capped)),
            RuleUsage.period_start.in_({start for _, start in wanted}),
        )
    ).all()
    return {key: amount for key, start, amount in rows if (key, start) in wanted}


def lazy_spent(session: Session, compiled: engine.CompiledRules) -> Mapping[str, Decimal]:
    """What budgeted campaigns have spent, read only if a rule of one of them fires."""
    if not compiled.budgeted:
        return {}
    return Lazy(lambda: campaign_spent(session, compiled))


def campaign_spent(
    session: Session, compiled: engine.CompiledRules, lock: bool = False
) -> dict[str, Decimal]:
    """What each budgeted campaign has spent (0 if nothing yet). ``lock``: make sure each
    campaign has its row, then take the rows' locks in code order, so that receipts drawing
    on one budget are serialised and the budget is never overspent."""
    budgeted = compiled.budgeted
    codes = sorted(budgeted)
    if not codes:
        return {}
    if lock:
        dialect = session.get_bind().dialect.name
        ins = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(CampaignSpend)
        session.execute(
            ins.values(
                [
                    {"code": c, "currency": budgeted[c], "spent": ZERO, "updated_at": now()}
                    for c in codes
                ]
            ).on_conflict_do_nothing(index_elements=["code"])
        )
    q = select(CampaignSpend.code, CampaignSpend.spent).where(CampaignSpend.code.in_(codes))
    if lock:
        q = q.order_by(CampaignSpend.code).with_for_update()
    found = {str(code): Decimal(spent) for code, spent in session.execute(q).all()}
    return {c: found.get(c, ZERO) for c in codes}


def rule_rows(
    purchase_id: uuid.UUID,
    member_id: uuid.UUID | None,
    compiled: engine.CompiledRules,
    applied: list[engine.AppliedRule],
    occurred_at: dt.datetime,
    timezone: str,
) -> list[dict[str, Any]]:
    """The ``purchase_rules`` rows of a purchase: which rules (and versions) gave what,
    one row per rule and unit. Pure: the caller writes them (on PostgreSQL, in the
    receipt's own statement)."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    capped = compiled.member_capped
    day = local_day(occurred_at, timezone)
    for a in applied:
        if a.key is None or a.amount is None or a.amount <= 0 or a.key.startswith("tier-"):
            continue
        unit = a.currency or compiled.base_currency
        k = (a.key, unit)
        row = rows.get(k)
        if row is None:
            period = capped.get(a.key)
            rows[k] = {
                "purchase_id": purchase_id,
                "rule_key": a.key,
                "unit": unit,
                "rule_version": a.version,
                "effect": a.effect,
                "campaign": a.campaign,
                "member_id": member_id,
                "period_start": period_start(period, day) if period and member_id else None,
                "amount": a.amount,
                "released": False,
            }
        else:
            row["amount"] += a.amount
    return list(rows.values())


def usage_rows(
    member_id: uuid.UUID | None,
    compiled: engine.CompiledRules,
    given: dict[str, tuple[str, Decimal]],
    occurred_at: dt.datetime,
    timezone: str,
) -> list[dict[str, Any]]:
    """What a purchase adds to the per-member caps it drew on: ``rule_usage`` rows, one
    per capped rule that gave something. Pure."""
    if member_id is None:
        return []
    day = local_day(occurred_at, timezone)
    return [
        {
            "rule_key": key,
            "member_id": member_id,
            "period_start": period_start(period, day),
            "unit": given[key][0],
            "amount": given[key][1],
        }
        for key, period in compiled.member_capped.items()
        if key in given
    ]


def plan_draws(
    plan: Plan,
    compiled: engine.CompiledRules,
    given: list[dict[str, Any]],
    usage: list[dict[str, Any]],
    campaign_spend: dict[str, Decimal],
) -> None:
    """What a purchase's rules gave and its draws on caps and budgets, as parts of
    ``plan``: ``given`` (``rule_rows``: which rules gave what), ``usage`` (from
    ``usage_rows``) added to the per-member caps, and what its rules give taken from their
    campaigns' budgets, each only while it still fits (a campaign's first draw makes its
    row), in code order (the order ``campaign_spent(lock=True)`` locks them). A budget
    that no longer fits (another receipt drew on it after this one read it) is
    ``Contended("campaign budget")``: the caller's one retry locks the budgets first."""
    plan.insert(table(PurchaseRule), given)
    plan.upsert_add(table(RuleUsage), ("rule_key", "member_id", "period_start"), ("amount",), usage)
    spend = {c: a for c, a in sorted(campaign_spend.items()) if a > 0 and c in compiled.campaigns}
    at = now()
    plan.upsert_add_within(
        table(CampaignSpend),
        ("code",),
        "spent",
        [
            {
                "code": code,
                "currency": compiled.budgeted.get(code, compiled.base_currency),
                "spent": amount,
                "updated_at": at,
            }
            for code, amount in spend.items()
        ],
        [None if (b := compiled.campaigns[code].budget) is None else b.amount for code in spend],
        "campaign budget",
    )


def release(session: Session, purchase_id: uuid.UUID) -> None:
    """Give back to the caps and budgets what a cancelled purchase drew on (once)."""
    rows = list(
        session.scalars(
            select(PurchaseRule)
            .where(PurchaseRule.purchase_id == purchase_id, PurchaseRule.released.is_(False))
            .order_by(PurchaseRule.rule_key, PurchaseRule.unit)
        )
    )
    for r in rows:
        if r.member_id is not None and r.period_start is not None:
            session.execute(
                update(RuleUsage)
                .where(
                    RuleUsage.rule_key == r.rule_key,
                    RuleUsage.member_id == r.member_id,
                    RuleUsage.period_start == r.period_start,
                )
                .values(amount=RuleUsage.amount - literal(r.amount, Amount()))
            )
        if r.campaign is not None:
            session.execute(
                update(CampaignSpend)
                .where(CampaignSpend.code == r.campaign)
                .values(spent=CampaignSpend.spent - literal(r.amount, Amount()))
            )
        r.released = True
    session.flush()
