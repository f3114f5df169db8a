"""The member app's words in English and Russian.

Which language a request gets is ``kopilka.memberapp.lang.pick_lang`` (the API answers in it
too).
"""

from __future__ import annotations

from collections.abc import Callable

# key → (English, Russian); "{name}" placeholders are filled by ``t(key, name=…)``.
MESSAGES: dict[str, tuple[str, str]] = {
    "skip_to_content": ("Skip to content", "Перейти к содержимому"),
    "nav": ("Sections", "Разделы"),
    "nav_card": ("Card", "Карта"),
    "nav_history": ("History", "История"),
    "nav_profile": ("Profile", "Профиль"),
    "nav_invite": ("Friends", "Друзья"),
    "card_heading": ("Your card", "Ваша карта"),
    "card_code_label": ("Code for the till", "Код для кассы"),
    "card_code_hint": (
        "Show the QR code at the till or say the number. It changes every 30 seconds.",
        "Покажите QR-код на кассе или продиктуйте номер. Он меняется каждые 30 секунд.",
    ),
    "card_code_loading": ("Preparing your code…", "Готовим код…"),
    "card_code_unavailable": (
        "The code cannot be shown: sign in again on this phone.",
        "Код недоступен: войдите заново на этом телефоне.",
    ),
    "brightness_hint": (
        "Turn the screen brightness up so the scanner reads the code.",
        "Прибавьте яркость экрана, чтобы сканер прочитал код.",
    ),
    "show_large": ("Show the number large", "Показать номер крупно"),
    "close": ("Close", "Закрыть"),
    "card_number": ("Card number", "Номер карты"),
    "barcode_label": ("Barcode of card number {number}", "Штрихкод номера карты {number}"),
    "qr_label": ("QR code of the code {code}", "QR-код кода {code}"),
    "balance_heading": ("Balance", "Баланс"),
    "available": ("Available", "Доступно"),
    "pending": ("On the way", "Ожидают начисления"),
    "expiring_next": ("{amount} expire on {day}", "{amount} сгорят {day}"),
    "tier_heading": ("Tier", "Уровень"),
    "tier_none": ("No tier yet", "Пока без уровня"),
    "tier_progress": ("{amount} to {tier}", "Ещё {amount} до уровня «{tier}»"),
    "tier_progress_purchases": (
        "{n} more purchases to {tier}",
        "До уровня «{tier}» осталось покупок: {n}",
    ),
    "blocked": (
        "Your card is blocked. Please ask at the till.",
        "Карта заблокирована. Обратитесь, пожалуйста, на кассу.",
    ),
    "recent": ("Recent", "Недавние операции"),
    "all_history": ("All history", "Вся история"),
    "history_heading": ("History", "История"),
    "history_empty": ("No operations yet.", "Операций пока нет."),
    "more": ("Show more", "Показать ещё"),
    "kind_earn": ("Earned", "Начислено"),
    "kind_redeem": ("Spent", "Списано"),
    "kind_return": ("Returned purchase", "Возврат покупки"),
    "kind_expire": ("Expired", "Сгорело"),
    "kind_adjust": ("Adjustment", "Корректировка"),
    "kind_transfer": ("Transfer", "Перевод"),
    "kind_reward": ("Reward", "Награда"),
    "kind_reversal": ("Reversal", "Сторно"),
    "receipt": ("Receipt", "Чек"),
    "receipt_heading": ("Receipt {number}", "Чек {number}"),
    "store": ("Store", "Магазин"),
    "subtotal": ("Total before discounts", "Сумма без скидок"),
    "discount": ("Discount", "Скидка"),
    "paid_with_points": ("Paid with points", "Оплачено баллами"),
    "total_due": ("Paid", "Оплачено"),
    "earned": ("Earned", "Начислено"),
    "status_returned": ("Returned", "Возвращён"),
    "status_cancelled": ("Cancelled", "Отменён"),
    "back": ("Back", "Назад"),
    "coupons_heading": ("Your coupons", "Ваши купоны"),
    "coupon_code": ("Code", "Код"),
    "valid_until": ("Valid until {day}", "Действует до {day}"),
    "reward_percent": ("{value} % off", "Скидка {value} %"),
    "reward_fixed": ("{value} off", "Скидка {value}"),
    "reward_points": ("+{value} {currency}", "+{value} {currency}"),
    "reward_multiplier": ("×{value} points", "Баллы ×{value}"),
    "reward_free_product": ("Free: {sku}", "В подарок: {sku}"),
    "profile_heading": ("Profile", "Профиль"),
    "name": ("Name", "Имя"),
    "phone": ("Phone", "Телефон"),
    "email": ("Email", "Email"),
    "referral_heading": ("Invite friends", "Пригласите друзей"),
    "referral_text": (
        "Share your link: a friend joins with it in the app, or gives your code at the till.",
        "Поделитесь ссылкой: друг зарегистрируется по ней в приложении или назовёт ваш код "
        "на кассе.",
    ),
    "your_code": ("Your code", "Ваш код"),
    "share": ("Share", "Поделиться"),
    "share_text": ("Join {app} with my code {code}", "Присоединяйтесь к {app} с моим кодом {code}"),
    "copied": ("Link copied", "Ссылка скопирована"),
    "language": ("Language", "Язык"),
    "consents_heading": ("Messages we may send you", "Сообщения, которые мы можем присылать"),
    "consent_email": ("Offers by email", "Предложения по email"),
    "consent_sms": ("Offers by SMS", "Предложения по SMS"),
    "consent_push": ("Offers as notifications", "Предложения в уведомлениях"),
    "save": ("Save", "Сохранить"),
    "saved": ("Saved", "Сохранено"),
    "notifications_heading": ("Notifications on this phone", "Уведомления на этом телефоне"),
    "notifications_text": (
        "Points earned, points about to expire and tier changes.",
        "Начисления, скорое сгорание баллов и смена уровня.",
    ),
    "notifications_on": ("Turn on notifications", "Включить уведомления"),
    "notifications_off": ("Turn off notifications", "Выключить уведомления"),
    "notifications_enabled": ("Notifications are on.", "Уведомления включены."),
    "notifications_disabled": ("Notifications are off.", "Уведомления выключены."),
    "notifications_unsupported": (
        "This browser cannot receive notifications.",
        "Этот браузер не получает уведомления.",
    ),
    "notifications_blocked": (
        "Notifications are blocked in the browser's settings.",
        "Уведомления запрещены в настройках браузера.",
    ),
    "sessions_heading": ("Signed-in devices", "Устройства, где выполнен вход"),
    "this_device": ("This device", "Это устройство"),
    "signed_in_at": ("Signed in {when}", "Вход {when}"),
    "last_seen": ("Last used {when}", "Последний раз {when}"),
    "by_code": ("with a code", "по коду"),
    "by_link": ("with a link from the till", "по ссылке с кассы"),
    "sign_out_device": ("Sign out", "Выйти"),
    "sign_out_device_label": ("Sign out {device}", "Выйти на устройстве {device}"),
    "sign_out": ("Sign out of this phone", "Выйти на этом телефоне"),
    "sign_in_heading": ("Sign in", "Вход"),
    "sign_in_intro": (
        "Enter the phone number or email you gave when you joined. We will send you a code.",
        "Введите телефон или email, указанные при регистрации. Мы пришлём код.",
    ),
    "phone_or_email": ("Phone or email", "Телефон или email"),
    "send_code": ("Get a code", "Получить код"),
    "code_sent": ("We sent a code to {to}.", "Мы отправили код на {to}."),
    "code_sent_maybe": (
        "If {to} belongs to a member, a code is on its way.",
        "Если {to} указан в карте участника, код уже в пути.",
    ),
    "code_label": ("Code", "Код"),
    "verify": ("Sign in", "Войти"),
    "other_destination": ("Use another phone or email", "Указать другой телефон или email"),
    "link_heading": ("Signing you in…", "Выполняем вход…"),
    "link_failed": (
        "This link does not work any more. Ask at the till for a new one, or sign in with a code.",
        "Ссылка больше не действует. Попросите на кассе новую или войдите по коду.",
    ),
    "sign_in_with_code": ("Sign in with a code", "Войти по коду"),
    "offline_banner": ("No connection. Shown as of {when}.", "Нет сети. Данные на {when}."),
    "as_of": ("Updated {when}", "Обновлено {when}"),
    "update_available": ("A new version of the app is ready.", "Готова новая версия приложения."),
    "update_reload": ("Update", "Обновить"),
    "offline_heading": ("You are offline", "Нет подключения"),
    "offline_text": (
        "Open the app once with a connection, and your card stays on this phone.",
        "Откройте приложение один раз при подключении — и карта останется на телефоне.",
    ),
    "retry": ("Try again", "Повторить"),
    "error_generic": (
        "Something went wrong. Please try again.",
        "Что-то пошло не так. Попробуйте ещё раз.",
    ),
    "too_many": (
        "Too many tries. Please wait a little.",
        "Слишком много попыток. Подождите немного.",
    ),
    "invite_open": ("Invite friends", "Пригласить друзей"),
    "invite_heading": ("Invite friends", "Пригласите друзей"),
    "invite_coupon": ("a coupon «{pool}»", "купон «{pool}»"),
    "invite_you_get": ("You get {prize}", "Вам — {prize}"),
    "invite_friend_gets": ("Your friend gets {prize}", "Другу — {prize}"),
    "invite_purchase_from": (
        "For your friend's first purchase of {amount} or more within {days} days of joining.",
        "За первую покупку друга от {amount} в течение {days} дн. после регистрации.",
    ),
    "invite_purchase_any": (
        "For your friend's first purchase within {days} days of joining.",
        "За первую покупку друга в течение {days} дн. после регистрации.",
    ),
    "invite_hold": (
        "Rewards can be used {days} days after the purchase.",
        "Награды можно потратить через {days} дн. после покупки.",
    ),
    "invite_qr_label": ("QR code of the link {url}", "QR-код ссылки {url}"),
    "friends_heading": ("Invited friends", "Приглашённые друзья"),
    "friends_empty": (
        "Nobody has joined with your link yet.",
        "По вашей ссылке пока никто не зарегистрировался.",
    ),
    "friend_since": ("Joined {day}", "Регистрация {day}"),
    "referral_status_joined": ("Waiting for the first purchase", "Ждём первую покупку"),
    "referral_status_qualified": ("Purchase made", "Покупка совершена"),
    "referral_status_rewarded": ("Reward given", "Награда начислена"),
    "referral_status_rejected": ("Not counted", "Не засчитано"),
    "referral_status_reversed": (
        "Purchase undone, waiting for another",
        "Покупка отменена, ждём новую",
    ),
    "referral_reason_self_referral": (
        "Looks like your own account",
        "Похоже на вашу собственную карту",
    ),
    "referral_reason_already_member": (
        "Was a member of the programme before",
        "Уже был участником программы",
    ),
    "referral_reason_circular": (
        "Is in your own chain of invitations",
        "Уже есть в вашей цепочке приглашений",
    ),
    "referral_reason_limit_reached": (
        "Your limit of rewarded friends is reached",
        "Достигнут лимит приглашений",
    ),
    "referral_reason_outside_dates": (
        "Joined outside the dates of the offer",
        "Регистрация вне сроков акции",
    ),
    "referral_reason_review_rejected": ("Not approved after a check", "Не одобрено после проверки"),
    "referral_reason_window_passed": ("No purchase in time", "Покупки не было в срок"),
    "referral_reason_purchase_cancelled": ("The purchase was cancelled", "Покупка отменена"),
    "referral_reason_purchase_returned": ("The purchase was returned", "Покупка возвращена"),
    "friend_reward_pending": ("Available from {day}: {reward}", "Станет доступно {day}: {reward}"),
    "friend_reward_standing": ("Received: {reward}", "Получено: {reward}"),
    "friend_reward_revoked": ("Taken back: {reward}", "Отменено: {reward}"),
    "friend_reward_checked": ("The reward waits for a check", "Награда — после проверки"),
    "invited_heading": ("You are invited to {app}", "Вас приглашают в {app}"),
    "invited_prize_from": (
        "Join and get {prize} for your first purchase of {amount} or more within {days} days.",
        "Зарегистрируйтесь и получите {prize} за первую покупку от {amount} в течение {days} дн.",
    ),
    "invited_prize_any": (
        "Join and get {prize} for your first purchase within {days} days.",
        "Зарегистрируйтесь и получите {prize} за первую покупку в течение {days} дн.",
    ),
    "invited_text": (
        "Or give this code at the till when you join:",
        "Или назовите этот код на кассе при регистрации:",
    ),
    "invited_member": (
        "You already have a card: the invitation is for new members.",
        "У вас уже есть карта: приглашение — для новых участников.",
    ),
    "join_intro": (
        "Enter your phone number and we will send you a code to join.",
        "Введите номер телефона — мы пришлём код для регистрации.",
    ),
    "join_name": ("Your name (optional)", "Ваше имя (необязательно)"),
    "join_button": ("Join", "Зарегистрироваться"),
    "other_phone": ("Use another phone", "Указать другой телефон"),
    "join_already_member": (
        "This phone already has a card, and the invitation is for new members only. "
        "You are signed in.",
        "У этого телефона уже есть карта, а приглашение — только для новых участников. "
        "Вы вошли в приложение.",
    ),
    "already_member": ("Already a member? Sign in", "Уже участник? Войти"),
    "open_card": ("Open my card", "Открыть мою карту"),
    "not_found_heading": ("Not found", "Не найдено"),
    # --- challenges ---
    "nav_challenges": ("Challenges", "Задания"),
    "challenges_heading": ("Challenges", "Задания"),
    "challenges_empty": ("No challenges right now.", "Сейчас заданий нет."),
    "challenges_link": ("Challenges and badges", "Задания и значки"),
    "progress_of": ("{value} of {target}", "{value} из {target}"),
    "time_left": ("{left} left", "Осталось: {left}"),
    "challenge_active": ("In progress", "В процессе"),
    "challenge_completed": ("Completed", "Выполнено"),
    "challenge_expired": ("Time is up", "Время вышло"),
    "challenge_join": ("Take part", "Участвовать"),
    "challenge_joined": ("You take part", "Вы участвуете"),
    "challenge_not_joined": (
        "Take part to have your purchases count.",
        "Нажмите «Участвовать», чтобы покупки засчитывались.",
    ),
    "challenge_step": ("Step {n}: {target}", "Шаг {n}: {target}"),
    "challenge_streak": (
        "{length} {every} running, {grace} may be missed",
        "{length} подряд ({every}), можно пропустить: {grace}",
    ),
    "every_day": ("days", "дней"),
    "every_week": ("weeks", "недель"),
    "every_month": ("months", "месяцев"),
    "challenge_reward_pending": ("Reward on the way: {what}", "Награда в пути: {what}"),
    "challenge_reward_standing": ("Reward: {what}", "Награда: {what}"),
    "challenge_reward_revoked": (
        "Reward taken back (a purchase was returned): {what}",
        "Награда отменена (покупку вернули): {what}",
    ),
    "challenge_done_notice": (
        "Challenge completed: {name}!",
        "Задание выполнено: «{name}»!",
    ),
    "past_challenges": ("Earlier", "Раньше"),
    "badges_heading": ("Badges", "Значки"),
    "badges_earned": ("Earned {day}", "Получен {day}"),
    "badges_not_yet": ("Not yet", "Ещё нет"),
    "badges_count": ("{n} of {total} earned", "Получено {n} из {total}"),
    "badges_empty": ("The programme has no badges yet.", "В программе пока нет значков."),
    "badge_word": ("badge «{name}»", "значок «{name}»"),
    "coupon_word": ("a coupon", "купон"),
    "joined_ok": ("You take part now.", "Теперь вы участвуете."),
}

# The words the browser-side modules need (put into every page as JSON).
SCRIPT_KEYS = (
    "card_code_unavailable",
    "qr_label",
    "copied",
    "saved",
    "error_generic",
    "too_many",
    "notifications_on",
    "notifications_off",
    "notifications_enabled",
    "notifications_disabled",
    "notifications_unsupported",
    "notifications_blocked",
    "code_sent",
    "code_sent_maybe",
    "link_failed",
    "offline_banner",
    "share_text",
    "joined_ok",
)


Translator = Callable[..., str]


def translator(lang: str) -> Translator:
    """``t(key, **values)`` in ``lang`` (the key itself if there is no such message)."""
    idx = 1 if lang == "ru" else 0

    def t(key: str, **values: object) -> str:
        pair = MESSAGES.get(key)
        text = pair[idx] if pair else key
        return text.format(**values) if values else text

    return t


def script_messages(lang: str) -> dict[str, str]:
    idx = 1 if lang == "ru" else 0
    return {key: MESSAGES[key][idx] for key in SCRIPT_KEYS}
