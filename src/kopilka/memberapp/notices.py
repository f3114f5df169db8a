"""The words of push notifications for domain events, in English and Russian (pure)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Any

from kopilka.memberapp import formatting
from kopilka.spec.program import ProgramSpec

PUSHED_TYPES = ("points.earned", "points.expiring", "tier.changed")

TEXTS: dict[str, dict[str, str]] = {
    "earned_title": {"en": "+{amount} {currency}", "ru": "+{amount} {currency}"},
    "earned_body": {
        "en": "Earned for your purchase. Thank you!",
        "ru": "Начислено за покупку. Спасибо!",
    },
    "earned_body_pending": {
        "en": "Earned for your purchase; yours to spend from {day}.",
        "ru": "Начислено за покупку; можно потратить с {day}.",
    },
    "expiring_title": {"en": "Points expire soon", "ru": "Скоро сгорят баллы"},
    "expiring_body": {
        "en": "{amount} {currency} expire on {day}. Spend them before then.",
        "ru": "{amount} {currency} сгорят {day} — успейте потратить.",
    },
    "tier_title": {"en": "Your tier has changed", "ru": "Ваш уровень изменился"},
    "tier_body": {"en": "Your tier is now {tier}.", "ru": "Теперь ваш уровень — {tier}."},
}


def _t(key: str, lang: str, **values: str) -> str:
    table = TEXTS[key]
    return table.get(lang, table["en"]).format(**values)


def _amount(data: dict[str, Any], spec: ProgramSpec, lang: str) -> tuple[str, str]:
    code = str(data.get("currency", ""))
    cur = spec.currency(code)
    try:
        value = Decimal(str(data.get("amount", "0")))
    except InvalidOperation:
        value = Decimal(0)
    precision = cur.precision if cur else 2
    return formatting.points(value, precision, lang), (cur.name if cur else code)


def _when(raw: Any) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(str(raw))
    except ValueError:
        return None


def message_for(
    event_type: str, data: dict[str, Any], spec: ProgramSpec, lang: str, at: dt.datetime
) -> dict[str, str] | None:
    """``{"title", "body", "url", "tag"}`` of the notification for an event, or None for
    an event that is not pushed."""
    tz = spec.timezone
    if event_type == "points.earned":
        amount, currency = _amount(data, spec, lang)
        available = _when(data.get("available_at"))
        if available is not None and available > at:
            body = _t("earned_body_pending", lang, day=formatting.day(available, tz, lang))
        else:
            body = _t("earned_body", lang)
        return {
            "title": _t("earned_title", lang, amount=amount, currency=currency),
            "body": body,
            "url": "/app/history",
            "tag": f"earned-{data.get('purchase_id', '')}",
        }
    if event_type == "points.expiring":
        amount, currency = _amount(data, spec, lang)
        expires = _when(data.get("expires_at"))
        return {
            "title": _t("expiring_title", lang),
            "body": _t(
                "expiring_body",
                lang,
                amount=amount,
                currency=currency,
                day=formatting.day(expires, tz, lang) if expires else "",
            ),
            "url": "/app/",
            "tag": f"expiring-{data.get('currency', '')}",
        }
    if event_type == "tier.changed":
        tier = str(
            data.get("tier") or data.get("to_name") or data.get("to") or data.get("new_tier") or "—"
        )
        return {
            "title": _t("tier_title", lang),
            "body": _t("tier_body", lang, tier=tier),
            "url": "/app/",
            "tag": "tier",
        }
    return None
