"""The console's words in English and Russian, and numbers written the local way.

The language follows the browser (``Accept-Language``, by quality); English otherwise.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal

LANGS = ("en", "ru")

# key → (English, Russian)
MESSAGES: dict[str, tuple[str, str]] = {
    "console": ("Console", "Консоль"),
    "sign_in": ("Sign in", "Войти"),
    "sign_out": ("Sign out", "Выйти"),
    "email": ("Email", "Email"),
    "password": ("Password", "Пароль"),
    "totp_title": ("One-time code", "Одноразовый код"),
    "totp_hint": (
        "Enter the 6-digit code from your authenticator app.",
        "Введите 6-значный код из приложения-аутентификатора.",
    ),
    "code": ("Code", "Код"),
    "confirm": ("Confirm", "Подтвердить"),
    "members": ("Members", "Участники"),
    "programme": ("Programme", "Программа"),
    "dashboards": ("Dashboards", "Дашборды"),
    "audit": ("Audit log", "Журнал аудита"),
    "account": ("Account", "Учётная запись"),
    "search": ("Search", "Найти"),
    "search_hint": (
        "Phone, email, card number, full name or external id",
        "Телефон, email, номер карты, ФИО или внешний id",
    ),
    "search_by": ("Search by", "Искать по"),
    "by_auto": ("guess", "автоматически"),
    "by_phone": ("phone", "телефону"),
    "by_email": ("email", "email"),
    "by_card": ("card", "карте"),
    "by_name": ("name", "имени"),
    "by_external_id": ("external id", "внешнему id"),
    "nothing_found": ("Nobody found.", "Никого не нашли."),
    "card": ("Card", "Карта"),
    "phone": ("Phone", "Телефон"),
    "name": ("Name", "Имя"),
    "status": ("Status", "Статус"),
    "tier": ("Tier", "Уровень"),
    "joined": ("Joined", "Регистрация"),
    "birth_date": ("Birth date", "Дата рождения"),
    "external_id": ("External id", "Внешний id"),
    "referral_code": ("Referral code", "Реферальный код"),
    "profile": ("Profile", "Профиль"),
    "consents": ("Consents", "Согласия"),
    "granted": ("granted", "дано"),
    "refused": ("not given", "нет"),
    "balances": ("Balances", "Балансы"),
    "currency": ("Currency", "Валюта"),
    "available": ("Available", "Доступно"),
    "pending": ("Pending", "Ожидает"),
    "expiring_next": ("Expiring next", "Ближайшее сгорание"),
    "ledger": ("Ledger", "История баллов"),
    "when": ("When", "Когда"),
    "kind": ("Kind", "Тип"),
    "amount": ("Amount", "Сумма"),
    "description": ("Description", "Описание"),
    "purchases": ("Purchases and returns", "Покупки и возвраты"),
    "receipt": ("Receipt", "Чек"),
    "store": ("Store", "Магазин"),
    "channel": ("Channel", "Канал"),
    "total_due": ("Paid", "Оплачено"),
    "returns": ("Returns", "Возвраты"),
    "refund": ("Refund", "Возврат денег"),
    "actions": ("Actions", "Действия"),
    "adjust": ("Adjust the balance", "Скорректировать баланс"),
    "adjust_hint": (
        "Signed amount: negative takes points away.",
        "Сумма со знаком: отрицательная списывает баллы.",
    ),
    "reason": ("Reason", "Причина"),
    "apply": ("Apply", "Применить"),
    "block": ("Block", "Заблокировать"),
    "unblock": ("Unblock", "Разблокировать"),
    "adjusted": ("Balance adjusted.", "Баланс скорректирован."),
    "adjust_pending": (
        "Sent for approval: above its currency's ceiling an adjustment moves nothing until "
        "someone else approves it.",
        "Отправлено на одобрение: корректировка выше порога валюты ничего не меняет, пока её "
        "не одобрит другой сотрудник.",
    ),
    "adjust_approved": ("Adjustment approved and posted.", "Корректировка одобрена и проведена."),
    "adjust_rejected": ("Adjustment rejected.", "Корректировка отклонена."),
    "approvals": ("Approvals", "Одобрения"),
    "pending_adjustments": ("Adjustments waiting for approval", "Корректировки на одобрении"),
    "no_pending_adjustments": ("Nothing waits for approval.", "Нет корректировок на одобрении."),
    "member": ("Member", "Участник"),
    "requested_by": ("Asked by", "Запросил"),
    "approve": ("Approve", "Одобрить"),
    "reject": ("Reject", "Отклонить"),
    "reject_reason": ("Why it is rejected", "Причина отказа"),
    "own_request": (
        "Yours: someone else approves it.",
        "Ваша: одобряет другой сотрудник.",
    ),
    "status_changed": ("Status changed.", "Статус изменён."),
    "tier_set": ("Tier updated.", "Уровень обновлён."),
    "tier_value": ("Qualifying value", "Квалификационное значение"),
    "tier_metric_spend": ("spend", "сумма покупок"),
    "tier_metric_points": ("points earned", "начисленные баллы"),
    "tier_metric_purchases": ("purchases", "число покупок"),
    "tier_next": ("Left to the next level", "До следующего уровня"),
    "tier_floor": ("Assigned by hand", "Назначен вручную"),
    "tier_forever": ("for good", "бессрочно"),
    "tier_expired": ("expired", "истёк"),
    "tier_grace": ("Grace period until", "Льготный период до"),
    "tier_assign": ("Assign a tier", "Назначить уровень"),
    "tier_assign_hint": (
        "The member stays at least at this tier until the end of the day chosen (empty: "
        "for good). An empty tier removes the assignment.",
        "Участник будет не ниже этого уровня до конца выбранного дня (пусто — бессрочно). "
        "Пустой уровень снимает назначение.",
    ),
    "tier_clear": ("— remove the assignment —", "— снять назначение —"),
    "tier_until": ("until", "до"),
    "tier_history": ("Tier history", "История уровня"),
    "tier_actor": ("By", "Кто"),
    "tier_reason_upgrade": ("upgrade", "повышение"),
    "tier_reason_downgrade": ("downgrade", "понижение"),
    "tier_reason_grace_expired": ("grace period over", "льготный период истёк"),
    "tier_reason_manual": ("assigned by hand", "назначен вручную"),
    "tier_reason_program_changed": ("programme changed", "программа изменилась"),
    "status_active": ("active", "активен"),
    "status_blocked": ("blocked", "заблокирован"),
    "status_erased": ("erased", "удалён"),
    "programme_version": ("Version in force", "Действующая версия"),
    "programme_upload": ("Apply a new version", "Применить новую версию"),
    "programme_file": ("YAML file", "Файл YAML"),
    "programme_text": ("or paste the YAML", "или вставьте YAML"),
    "programme_applied": ("Programme applied: version", "Программа применена: версия"),
    "programme_unchanged": ("Nothing changed: version", "Без изменений: версия"),
    "programme_errors": ("The file has errors", "В файле ошибки"),
    "programme_history": ("Versions", "Версии"),
    "simulate": ("Simulate on a receipt", "Проверить на чеке"),
    "simulate_hint": (
        "A sample receipt (JSON, as for /api/v1/purchases/calculate).",
        "Пример чека (JSON, как для /api/v1/purchases/calculate).",
    ),
    "simulate_result": ("Simulation", "Результат проверки"),
    "publish": ("Publish", "Опубликовать"),
    "rules_fired": ("Rules that fired", "Сработавшие правила"),
    "period": ("Period", "Период"),
    "from": ("From", "С"),
    "to": ("To", "По"),
    "all": ("all", "все"),
    "grain": ("Step", "Шаг"),
    "grain_day": ("day", "день"),
    "grain_week": ("week", "неделя"),
    "grain_month": ("month", "месяц"),
    "show": ("Show", "Показать"),
    "csv": ("CSV", "CSV"),
    "rolled_up_at": ("Figures as of", "Данные на"),
    "never_rolled_up": (
        "The rollup has not run yet: `kopilka reports rollup`.",
        "Агрегаты ещё не построены: `kopilka reports rollup`.",
    ),
    "acquisition": ("Members acquired", "Новые участники"),
    "active": ("Active members", "Активные участники"),
    "active_30": ("bought in 30 days", "покупали за 30 дней"),
    "active_90": ("bought in 90 days", "покупали за 90 дней"),
    "receipts": ("Receipts", "Чеки"),
    "card_share": ("Receipts with a card", "Чеки с картой"),
    "avg_receipt": ("Average receipt", "Средний чек"),
    "avg_members": ("members", "участники"),
    "avg_anonymous": ("without a card", "без карты"),
    "points": ("Points", "Баллы"),
    "issued": ("issued", "начислено"),
    "redeemed": ("redeemed", "списано"),
    "expired": ("expired", "сгорело"),
    "breakage_rate": ("Breakage rate", "Доля сгорания"),
    "redemption_rate": ("Redemption rate", "Доля списания"),
    "liability": ("Outstanding liability", "Обязательства по баллам"),
    "liability_now": ("now", "сейчас"),
    "cohorts": ("Cohort retention", "Удержание когорт"),
    "cohort_hint": (
        "Share of each month's new members (those who joined within the period) who bought "
        "in the months after joining.",
        "Доля новых участников месяца (вступивших в выбранный период), купивших в "
        "следующие месяцы.",
    ),
    "tiers": ("Tier mix now", "Распределение по уровням сейчас"),
    "no_tier": ("no tier", "без уровня"),
    "tiers_snapshot": (
        "A snapshot of members' tiers now: not filtered by period, store, channel or tier. "
        "Movement over the period is below.",
        "Снимок текущих уровней участников: без фильтров по периоду, магазину, каналу и "
        "уровню. Движение за период — ниже.",
    ),
    "ignored_filters": (
        "Filters this chart does not apply",
        "Фильтры, которые этот график не учитывает",
    ),
    "tier_movement": ("Tier movement", "Движение по уровням"),
    "tier_movement_hint": (
        "Changes of tier by the day they took effect. Tier: changes from or to it; not "
        "filtered by store or channel.",
        "Смены уровня по дню, когда они вступили в силу. Уровень: смены с него или на "
        "него; без фильтров по магазину и каналу.",
    ),
    "upgrades": ("upgrades", "повышения"),
    "downgrades": ("downgrades", "понижения"),
    "manual_changes": ("by hand", "вручную"),
    "program_changed_changes": ("programme changed", "смена программы"),
    "tier_matrix": ("From → to over the period", "С какого уровня на какой за период"),
    "changes": ("Changes", "Смен"),
    "campaigns": ("Campaigns", "Кампании"),
    "campaign": ("Campaign", "Кампания"),
    "campaign_cost": ("Campaign cost", "Затраты на кампании"),
    "campaign_cost_hint": (
        "Money value of the points the campaign's rules gave, and the discounts they gave, "
        "on confirmed receipts of the period. Not filtered by tier.",
        "Стоимость баллов, начисленных правилами кампании, и скидок по ним на "
        "подтверждённых чеках периода. Без фильтра по уровню.",
    ),
    "campaign_lift": ("Campaign lift", "Прирост выручки от кампаний"),
    "campaign_lift_hint": (
        "Revenue per member reached ÷ revenue per other active member outside the control "
        "group − 1. An observational comparison, not a randomised test: members a campaign "
        "reaches are those who buy what it covers, so a part of the difference is who they "
        "are, not what the campaign did.",
        "Выручка на участника, охваченного кампанией, ÷ выручка на другого активного "
        "участника вне контрольной группы − 1. Это наблюдение, а не рандомизированный тест: "
        "кампания охватывает тех, кто покупает её товары, и часть разницы объясняется тем, "
        "кто эти люди, а не кампанией.",
    ),
    "points_value": ("points' value", "стоимость баллов"),
    "discounts": ("discounts", "скидки"),
    "purchases_touched": ("Receipts", "Чеки"),
    "members_reached": ("Members reached", "Охвачено участников"),
    "revenue_reached": ("Revenue per member reached", "Выручка на охваченного"),
    "revenue_others": ("per other active member", "на другого активного"),
    "lift": ("Lift", "Прирост"),
    "no_campaigns": ("No campaigns in the programme.", "В программе нет кампаний."),
    "roi": ("Programme ROI", "ROI программы"),
    "roi_hint": (
        "Incremental revenue against the control group, less the cost of points and "
        "discounts; 95 % confidence interval.",
        "Дополнительная выручка относительно контрольной группы за вычетом стоимости "
        "баллов и скидок; 95 % доверительный интервал.",
    ),
    "roi_not_configured": (
        "No control group: set control_group_share in the programme.",
        "Нет контрольной группы: задайте control_group_share в программе.",
    ),
    "incremental_revenue": ("Incremental revenue", "Дополнительная выручка"),
    "cost": ("Cost", "Затраты"),
    "control_group": ("Control group", "Контрольная группа"),
    "members_outside": ("members outside it", "остальные участники"),
    "revenue_per_member": ("Revenue per member", "Выручка на участника"),
    "audit_actor": ("Who", "Кто"),
    "audit_action": ("What", "Что"),
    "audit_target": ("Object", "Объект"),
    "audit_before": ("Before", "До"),
    "audit_after": ("After", "После"),
    "audit_details": ("Details", "Подробности"),
    "next_page": ("Older", "Раньше"),
    "totp_enrol": ("Two-factor sign-in", "Двухфакторный вход"),
    "totp_on": ("Two-factor sign-in is on.", "Двухфакторный вход включён."),
    "totp_scan": (
        "Scan the code with an authenticator app, then enter the code it shows.",
        "Отсканируйте код приложением-аутентификатором и введите показанный код.",
    ),
    "totp_enabled": ("Two-factor sign-in enabled.", "Двухфакторный вход включён."),
    "totp_disable": ("Turn off", "Отключить"),
    "totp_disabled": ("Two-factor sign-in turned off.", "Двухфакторный вход отключён."),
    "secret": ("Secret", "Секрет"),
    "forbidden": ("Your role may not do this.", "Вашей роли это недоступно."),
    "not_found": ("Not found.", "Не найдено."),
    "role": ("Role", "Роль"),
    "coupons": ("Coupons", "Купоны"),
    "coupon_code": ("Code", "Код"),
    "coupon_pool": ("Pool", "Пул"),
    "coupon_reward": ("Reward", "Награда"),
    "coupon_uses": ("Used", "Использован"),
    "valid_until": ("Valid until", "Действует до"),
    "coupon_status_available": ("available", "доступен"),
    "coupon_status_used": ("used", "использован"),
    "coupon_status_exhausted": ("used up", "исчерпан"),
    "coupon_status_expired": ("expired", "истёк"),
    "coupon_status_not_started": ("not started", "ещё не начался"),
    "coupon_status_paused": ("paused", "приостановлен"),
    "contact": ("Send to the member", "Отправить участнику"),
    "contact_hint": (
        "Sent through the channel of the member app's sign-in codes.",
        "Отправляется тем же каналом, что и коды входа в приложение.",
    ),
    "via": ("to", "на"),
    "via_auto": ("phone, else email", "телефон, иначе email"),
    "via_sms": ("phone (SMS)", "телефон (SMS)"),
    "via_email": ("email", "email"),
    "message_language": ("language", "язык"),
    "send_app_link": ("Send the app link", "Отправить ссылку на приложение"),
    "resend_card": ("Resend the card", "Отправить номер карты"),
    "app_link_sent": ("App link sent.", "Ссылка на приложение отправлена."),
    "card_sent": ("Card number sent.", "Номер карты отправлен."),
    "app_link": ("One-time app link", "Одноразовая ссылка в приложение"),
    "app_link_hint": (
        "Works once, until {until}. Sent to {to}; you may also read it out or show it.",
        "Действует один раз, до {until}. Отправлена на {to}; её можно также продиктовать "
        "или показать.",
    ),
    "delivery_failed": (
        "The message could not be delivered: the channel failed (see the server log).",
        "Сообщение не доставлено: канал отправки не сработал (см. журнал сервера).",
    ),
    "message_app_link": (
        "Open {url} to sign in to {app}. The link works once, for {minutes} minutes.",
        "Откройте {url}, чтобы войти в {app}. Ссылка действует один раз, {minutes} минут.",
    ),
    "message_card": ("Your {app} card number: {card}.", "Номер вашей карты {app}: {card}."),
    "referrals": ("Referrals", "Рефералы"),
    "referral_funnel": (
        "Funnel by week: links opened → joined → qualified → rewarded",
        "Воронка по неделям: открыли ссылку → вступили → выполнили условие → награждены",
    ),
    "referral_weeks_hint": (
        "ISO weeks in the programme's time zone; each step counted in the week it happened.",
        "Недели ISO в часовом поясе программы; каждый шаг считается в неделе, когда он произошёл.",
    ),
    "step_links_opened": ("Links opened", "Открыли ссылку"),
    "step_joined": ("Joined", "Вступили"),
    "step_qualified": ("Qualified", "Выполнили условие"),
    "step_rewarded": ("Rewarded", "Награждены"),
    "of_previous": ("of the step before", "от предыдущего шага"),
    "week": ("Week", "Неделя"),
    "total": ("Total", "Итого"),
    "referrals_count": ("Referrals", "Рефералов"),
    "referral_outcomes": ("Rejections and reversals", "Отказы и отмены"),
    "referral_outcomes_hint": (
        "Referrals rejected or reversed now, by reason, whose last change fell in the period.",
        "Рефералы, отклонённые или отменённые сейчас, по причинам, с последним изменением в "
        "выбранном периоде.",
    ),
    "referral_cost": ("Cost of rewards", "Затраты на награды"),
    "referral_cost_hint": (
        "Points posted as rewards in the period and not revoked, times the point's money "
        "value in the programme. Coupons are counted apart.",
        "Баллы, начисленные в награду за период и не отозванные, умноженные на денежную "
        "стоимость балла в программе. Купоны считаются отдельно.",
    ),
    "standing": ("Standing", "Начислено"),
    "point_value": ("Point's value", "Стоимость балла"),
    "coupons_given": ("Coupons given", "Выдано купонов"),
    "referral_revenue": (
        "Revenue: referred members and the others",
        "Выручка: приглашённые и остальные",
    ),
    "referral_revenue_hint": (
        "Money paid on the period's receipts less refunds, per member who bought. Referred: "
        "friends whose referral was not rejected.",
        "Оплачено по чекам периода за вычетом возвратов, на купившего участника. "
        "Приглашённые — друзья, чей реферал не отклонён.",
    ),
    "group_referred": ("referred", "приглашённые"),
    "group_others": ("others", "остальные"),
    "buyers": ("Members who bought", "Покупавших участников"),
    "revenue": ("Revenue", "Выручка"),
    "referral_review": ("Referrals waiting for a review", "Рефералы на проверке"),
    "no_referrals_to_review": ("No referral waits for a review.", "Нет рефералов на проверке."),
    "friend": ("Friend", "Друг"),
    "referrer": ("Referrer", "Пригласивший"),
    "flags": ("Why it waits", "Почему на проверке"),
    "referral_approved": ("Referral approved.", "Реферал одобрен."),
    "referral_rejected": ("Referral rejected.", "Реферал отклонён."),
    "referral_reason_needed": (
        "Say why it is rejected (at least 3 characters).",
        "Укажите причину отказа (не короче 3 символов).",
    ),
    "flag_referrer_velocity": (
        "many friends of one referrer in a day",
        "много друзей одного участника за день",
    ),
    "flag_device_velocity": (
        "many enrolments on one device",
        "много регистраций с одного устройства",
    ),
    "flag_cashier_velocity": (
        "many enrolments by one cashier in an hour",
        "много регистраций одним кассиром за час",
    ),
    "flag_disposable_email": ("a throwaway mailbox", "одноразовый почтовый ящик"),
    "flag_same_device": ("the referrer's device", "устройство пригласившего"),
    "referral_status_joined": ("joined", "вступил"),
    "referral_status_qualified": ("qualified", "выполнил условие"),
    "referral_status_rewarded": ("rewarded", "награждён"),
    "referral_status_rejected": ("rejected", "отклонён"),
    "referral_status_reversed": ("reversed", "отменён"),
    "referral_reason_self_referral": ("self-referral", "приглашение самого себя"),
    "referral_reason_already_member": ("already a member", "уже был участником"),
    "referral_reason_circular": ("circular referral", "круговое приглашение"),
    "referral_reason_limit_reached": ("referrer's limit reached", "исчерпан лимит пригласившего"),
    "referral_reason_outside_dates": ("outside the programme's dates", "вне сроков программы"),
    "referral_reason_review_rejected": ("rejected on review", "отклонён при проверке"),
    "referral_reason_window_passed": ("no qualifying purchase in time", "нет покупки в срок"),
    "referral_reason_purchase_cancelled": ("purchase cancelled", "покупка отменена"),
    "referral_reason_purchase_returned": ("purchase returned", "покупка возвращена"),
    "language": ("Language", "Язык"),
}


def pick_lang(accept_language: str | None) -> str:
    """The best of ``LANGS`` for an ``Accept-Language`` header (by quality, then order)."""
    best, best_q = "en", -1.0
    for i, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                q = float(params[2:])
            except ValueError:
                q = 0.0
        lang = tag.strip().lower().split("-")[0]
        if lang in LANGS and (q > best_q or (q == best_q and i == 0)):
            best, best_q = lang, q
    return best


def translator(lang: str) -> Callable[[str], str]:
    idx = 1 if lang == "ru" else 0

    def t(key: str) -> str:
        pair = MESSAGES.get(key)
        return pair[idx] if pair else key

    return t


def fmt_number(value: Decimal | int | None, lang: str, places: int = 2) -> str:
    """``1234567.5`` → ``1,234,567.50`` (en) or ``1 234 567,50`` (ru)."""
    if value is None:
        return "—"
    d = Decimal(value).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    sign = "-" if d < 0 else ""
    whole, _, frac = f"{abs(d):f}".partition(".")
    groups: list[str] = []
    while len(whole) > 3:
        groups.insert(0, whole[-3:])
        whole = whole[:-3]
    groups.insert(0, whole)
    sep, point = ("\u202f", ",") if lang == "ru" else (",", ".")
    return sign + sep.join(groups) + (point + frac if frac else "")


def fmt_percent(value: Decimal | None, lang: str, places: int = 1) -> str:
    if value is None:
        return "—"
    return fmt_number(Decimal(value) * 100, lang, places) + ("\u00a0%" if lang == "ru" else "%")


def fmt_moment(value: dt.datetime | str | None, lang: str) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value.strftime("%d.%m.%Y %H:%M" if lang == "ru" else "%Y-%m-%d %H:%M")


def fmt_day(value: dt.date | str | None, lang: str) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        value = dt.date.fromisoformat(value[:10])
    return value.strftime("%d.%m.%Y" if lang == "ru" else "%Y-%m-%d")


# --- leaderboards ---
MESSAGES.update(
    {
        "leaderboards": ("Leaderboards", "Рейтинги"),
        "leaderboards_none": (
            "The programme has no leaderboards (add a leaderboards: section).",
            "В программе нет рейтингов (добавьте раздел leaderboards:).",
        ),
        "leaderboard": ("Board", "Рейтинг"),
        "leaderboard_period": ("Period", "Период"),
        "leaderboard_metric": ("Metric", "Показатель"),
        "leaderboard_shown_only": (
            "only members who opted in are ranked",
            "в рейтинге только участники, давшие согласие",
        ),
        "leaderboard_display_name": ("Shown as", "Имя в рейтинге"),
        "leaderboard_value": ("Score", "Результат"),
        "leaderboard_empty": ("Nobody on this board yet.", "В рейтинге пока никого нет."),
    }
)


# --- rewards ---
MESSAGES.update(
    {
        "rewards": ("Rewards", "Награды"),
        "no_rewards": (
            "The programme has no rewards (its rewards: section).",
            "В программе нет наград (раздел rewards:).",
        ),
        "reward_code": ("Code", "Код"),
        "reward_name": ("Name", "Название"),
        "reward_cost": ("Cost", "Цена"),
        "reward_gives": ("Gives", "Что даёт"),
        "reward_stock": ("Stock", "Запас"),
        "reward_taken": ("Taken", "Выдано"),
        "reward_left": ("Left", "Осталось"),
        "reward_dates": ("Dates", "Даты"),
        "reward_at_till": ("at the till", "на кассе"),
        "reward_coupon": ("coupon", "купон"),
        "reward_claims": ("Claims", "Получения"),
        "reward_all": ("all rewards", "все награды"),
        "reward_when": ("When", "Когда"),
        "reward_member": ("Member", "Участник"),
        "reward_channel": ("Where", "Где"),
        "reward_channel_till": ("till", "касса"),
        "reward_channel_app": ("app", "приложение"),
        "reward_status_held": ("held", "в резерве"),
        "reward_status_claimed": ("claimed", "получена"),
        "reward_status_returned": ("returned", "возвращена"),
        "reward_status_released": ("released", "снят резерв"),
        "reward_units": ("Units", "Штук"),
        "reward_what": ("Code or receipt", "Купон или чек"),
        "reward_receipt_line": ("receipt line", "строка чека"),
    }
)


# --- challenges ---
MESSAGES.update(
    {
        "challenges": ("Challenges", "Задания"),
        "challenge": ("Challenge", "Задание"),
        "challenge_new": ("New challenge", "Новое задание"),
        "challenge_edit": ("Edit challenge", "Изменить задание"),
        "challenge_form": ("Challenge", "Задание"),
        "edit": ("Edit", "Изменить"),
        "no_challenges": ("The programme has no challenges yet.", "В программе пока нет заданий."),
        "challenge_joined": ("Joined", "Участвовали"),
        "challenge_completed": ("Completed", "Выполнили"),
        "challenge_rate": ("Completion rate", "Доля выполнивших"),
        "challenge_spend_participant": ("Spend per participant", "Траты участника"),
        "challenge_spend_comparable": ("Comparable non-participant", "Похожего неучастника"),
        "challenge_spend_difference": ("Difference", "Разница"),
        "challenge_groups": ("Participants / comparable", "Участники / похожие"),
        "challenge_unmatched": ("without a match", "без пары"),
        "challenge_opt_in": ("opt-in", "по записи"),
        "challenge_took_part": ("took part", "продвинулись"),
        "challenge_figures_hint": (
            "Joined: opted in during the period (an automatic challenge: made progress in "
            "it). Completed: of those with progress in the period (completions in "
            "brackets). Cost: rewards given in the period and not revoked, in money.",
            "Участвовали: записались за период (автоматическое задание — продвинулись в нём). "
            "Выполнили: из продвинувшихся за период (в скобках — число выполнений). "
            "Стоимость: награды периода, не отозванные, в деньгах.",
        ),
        "challenge_comparison_hint": (
            "Spend: money paid in the period, after returns. Comparable non-participants are "
            "in the same decile of spend (or also spent nothing) in the equal window before,",
            "Траты: оплачено за период за вычетом возвратов. Похожие неучастники — из того же "
            "дециля трат (или тоже без трат) за такое же окно до периода,",
        ),
        "challenge_published": ("Published as programme version", "Опубликовано: версия программы"),
        "challenge_form_hint": (
            "Check the challenge to see its simulation over past receipts and what the "
            "programme would change, then publish it as a new version.",
            "Проверьте задание: будет показано, что оно дало бы на прошлых чеках и что "
            "изменится в программе; затем опубликуйте новую версию.",
        ),
        "challenge_fix_fields": ("Fix the fields marked below.", "Исправьте отмеченные поля."),
        "challenge_join": ("Taking part", "Участие"),
        "challenge_join_auto": ("everyone, automatically", "все, автоматически"),
        "challenge_join_opt_in": ("after joining", "после записи"),
        "challenge_goal": ("Goal", "Цель"),
        "challenge_count": ("What counts", "Что считаем"),
        "count_purchases": ("purchases", "покупки"),
        "count_paid": ("money paid", "сумму оплат"),
        "count_days": ("days with a purchase", "дни с покупкой"),
        "count_categories": ("distinct categories", "разные категории"),
        "count_units": ("units of goods", "штуки товара"),
        "count_events": ("events", "события"),
        "count_referrals": ("friends who qualified", "приглашённых друзей"),
        "challenge_target": ("Target", "Цель"),
        "challenge_categories": ("Categories", "Категории"),
        "comma_separated": ("comma-separated", "через запятую"),
        "challenge_min_receipt": ("Minimum receipt", "Минимальный чек"),
        "challenge_stores": ("Stores", "Магазины"),
        "challenge_channels": ("Channels", "Каналы"),
        "challenge_event_type": ("Event type", "Тип события"),
        "challenge_period": ("Period", "Период"),
        "challenge_period_kind": ("Kind", "Вид"),
        "period_every": ("Every", "Каждый"),
        "period_fixed": ("fixed dates", "фиксированные даты"),
        "period_days": ("days from joining", "дни от записи"),
        "period_days_n": ("Days from joining", "Дней от записи"),
        "period_none": ("no period", "без периода"),
        "every_day": ("day", "день"),
        "every_week": ("week", "неделя"),
        "every_month": ("month", "месяц"),
        "challenge_audience": ("Audience", "Аудитория"),
        "challenge_tiers": ("Tiers", "Уровни"),
        "challenge_tags": ("Tags", "Метки"),
        "challenge_reward": ("Reward", "Награда"),
        "challenge_badge": ("Badge", "Значок"),
        "challenge_hold_days": ("Held for days", "Удерживать дней"),
        "challenge_steps": ("Ladder", "Лестница"),
        "challenge_steps_hint": (
            "one step a line, “target: amount” in the currency above; the badge and the "
            "coupon go with the last step",
            "по шагу в строке, «цель: сумма» в валюте выше; значок и купон — за последний шаг",
        ),
        "challenge_streak": ("Streak", "Серия"),
        "challenge_streak_unit": ("Unit", "Единица"),
        "challenge_streak_length": ("Length", "Длина"),
        "challenge_streak_hint": ("empty: no streak", "пусто — без серии"),
        "challenge_streak_grace": ("Misses forgiven", "Пропусков можно"),
        "challenge_simulation": ("Simulation", "Симуляция"),
        "challenge_simulate_hint": (
            "Empty: the challenge's last full period (or the last 30 days). Opt-in challenges "
            "are replayed as if every member of the audience had joined.",
            "Пусто — последний полный период задания (или 30 дней). Задания по записи "
            "считаются так, будто записались все из аудитории.",
        ),
        "challenge_check": ("Check and simulate", "Проверить и просчитать"),
        "challenge_publish": ("Publish", "Опубликовать"),
        "challenge_sim_range": ("Receipts of", "Чеки за"),
        "challenge_sim_receipts": ("receipts", "чеков"),
        "challenge_sim_eligible": ("Bought, in the audience", "Покупали, из аудитории"),
        "challenge_sim_progressed": ("Progressed", "Продвинулись"),
        "challenge_sim_reached": ("Reached", "Достигли"),
        "challenge_not_simulated": (
            "Only goals counted from receipts can be simulated.",
            "Просчитать можно только цели по чекам.",
        ),
        "challenge_diff": ("What the programme would change", "Что изменится в программе"),
        "challenge_form_changed": (
            "The form changed since the check: see the new check, then publish.",
            "Форма изменилась после проверки: посмотрите новую проверку и опубликуйте.",
        ),
        "challenge_programme_moved": (
            "The programme changed since the check: check again.",
            "Программа изменилась после проверки: проверьте ещё раз.",
        ),
    }
)
