"""The referrals' fraud checks that need no database: one person's email written two ways,
and disposable mailboxes. Pure."""

from __future__ import annotations

from collections.abc import Iterable

# Throwaway mailbox services (a friend "enrolled" with one is most likely the referrer):
# a short list of the common ones; a programme adds its own in
# ``referrals.fraud.disposable_email_domains``.
DISPOSABLE_DOMAINS = frozenset(
    {
        "10minutemail.com",
        "1secmail.com",
        "burnermail.io",
        "discard.email",
        "dispostable.com",
        "dropmail.me",
        "emailondeck.com",
        "fakeinbox.com",
        "getnada.com",
        "guerrillamail.com",
        "guerrillamailblock.com",
        "mail.tm",
        "maildrop.cc",
        "mailinator.com",
        "mailforspam.com",
        "mintemail.com",
        "mohmal.com",
        "mytemp.email",
        "sharklasers.com",
        "spamgourmet.com",
        "temp-mail.org",
        "temp-mail.ru",
        "tempmail.plus",
        "tempmailo.com",
        "tempr.email",
        "throwawaymail.com",
        "trashmail.com",
        "yopmail.com",
    }
)

# Mail services that ignore dots in the mailbox's name (and their second names).
_DOTLESS = {"gmail.com": "gmail.com", "googlemail.com": "gmail.com"}
# Yandex delivers a.b, a-b and every domain of it to one mailbox.
_YANDEX = {"yandex.ru", "yandex.com", "yandex.by", "yandex.kz", "yandex.ua", "ya.ru"}


def domain_of(email: str) -> str:
    """The domain of an address, lowercased ("" without one)."""
    _, _, domain = email.strip().lower().rpartition("@")
    return domain


def mailbox_of(email: str) -> str:
    """The mailbox an address delivers to, so that one person's addresses written two ways
    compare equal: lowercased, without a ``+tag``, dots ignored where the service ignores
    them (Gmail), Yandex's domains and its ``.``/``-`` as one."""
    local, _, domain = email.strip().lower().rpartition("@")
    if not local:
        return email.strip().lower()
    local = local.split("+", 1)[0]
    if domain in _DOTLESS:
        return f"{local.replace('.', '')}@{_DOTLESS[domain]}"
    if domain in _YANDEX:
        return f"{local.replace('.', '-')}@yandex.ru"
    return f"{local}@{domain}"


def is_disposable(email: str, extra: Iterable[str] = ()) -> bool:
    """Whether an address is at a throwaway mailbox service (or a subdomain of one)."""
    domain = domain_of(email)
    known = DISPOSABLE_DOMAINS | {d.lower() for d in extra}
    parts = domain.split(".")
    return any(".".join(parts[i:]) in known for i in range(len(parts) - 1))
