"""Personal data encrypted at rest (AES-256-GCM) and found again through blind indexes.

Values are stored as ``v1.<key id>.<base64url(nonce ‖ ciphertext ‖ tag)>``: the key id
travels with each value, so a key ring can hold old keys for reading while the first key
encrypts (``kopilka keys rotate-data`` re-encrypts everything with it). The column's name
(``members.phone``) is the associated data, so a value copied into another column does not
decrypt.

Exact look-ups (phone, email, card, name) go through *blind indexes*: an HMAC-SHA256 of the
normalised value under a separate key, unique where the value must be unique. Equal values
give equal indexes; the index reveals nothing without the key.

Keys come from ``KOPILKA_DATA_KEYS`` (``id:base64key,…``, 32-byte keys) and
``KOPILKA_INDEX_KEY`` (base64, 32 bytes). Without them a development key ring derived from
a fixed public string is used; production refuses to start without real keys.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import os
import re
import threading
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import Text
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import operators
from sqlalchemy.types import TypeDecorator

from kopilka.core.config import Settings, get_settings

VERSION = "v1"
DEV_KEY_ID = "dev"
_DEV_SEED = b"kopilka development key ring - public, never for production"
_KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,16}$")


class KeyRingError(ValueError):
    """A key ring setting that cannot be used."""


class DecryptionError(ValueError):
    """A stored value that no key of the ring opens (wrong key, or tampered with)."""


def _b64decode(text: str) -> bytes:
    text = text.strip()
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _derive(info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(_DEV_SEED)


@dataclass(frozen=True)
class KeyRing:
    active: str  # id of the key that encrypts
    keys: dict[str, bytes]  # id -> 32-byte AES key
    index_key: bytes
    development: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyRing:
        dev = not settings.data_keys
        if dev:
            keys = {DEV_KEY_ID: _derive(b"data-key")}
            active = DEV_KEY_ID
        else:
            keys, active = parse_key_ring(settings.data_keys or "")
        if settings.index_key:
            try:
                index_key = _b64decode(settings.index_key)
            except ValueError as exc:
                raise KeyRingError("KOPILKA_INDEX_KEY is not base64") from exc
            if len(index_key) < 32:
                raise KeyRingError("KOPILKA_INDEX_KEY must be at least 32 bytes")
        else:
            index_key = _derive(b"blind-index-key")
        return cls(active, keys, index_key, dev)


def parse_key_ring(text: str) -> tuple[dict[str, bytes], str]:
    """``"k2:BASE64,k1:BASE64"`` → keys by id and the active (first) id."""
    keys: dict[str, bytes] = {}
    active = ""
    for part in filter(None, (p.strip() for p in text.split(","))):
        key_id, sep, material = part.partition(":")
        if not sep or not _KEY_ID.match(key_id):
            raise KeyRingError(f"KOPILKA_DATA_KEYS: {key_id!r} is not id:base64key")
        try:
            raw = _b64decode(material)
        except ValueError as exc:
            raise KeyRingError(f"KOPILKA_DATA_KEYS: key {key_id!r} is not base64") from exc
        if len(raw) != 32:
            raise KeyRingError(f"KOPILKA_DATA_KEYS: key {key_id!r} must be 32 bytes")
        if key_id in keys:
            raise KeyRingError(f"KOPILKA_DATA_KEYS: key id {key_id!r} appears twice")
        keys[key_id] = raw
        active = active or key_id
    if not keys:
        raise KeyRingError("KOPILKA_DATA_KEYS holds no key")
    return keys, active


def generate_key() -> str:
    """A fresh random 32-byte key, base64url (for ``KOPILKA_DATA_KEYS``/``INDEX_KEY``)."""
    return _b64(os.urandom(32))


_lock = threading.Lock()
_ring: tuple[tuple[str | None, str | None], KeyRing] | None = None
_aead: dict[bytes, AESGCM] = {}


def key_ring() -> KeyRing:
    """The key ring of the settings in force (rebuilt when the key settings change)."""
    global _ring
    settings = get_settings()
    source = (settings.data_keys, settings.index_key)
    with _lock:
        if _ring is not None and _ring[0] == source:
            return _ring[1]
    ring = KeyRing.from_settings(settings)
    with _lock:
        _ring = (source, ring)
    return ring


def _cipher(key: bytes) -> AESGCM:
    with _lock:
        c = _aead.get(key)
        if c is None:
            c = _aead[key] = AESGCM(key)
        return c


def encrypt(plaintext: str, context: str, ring: KeyRing | None = None) -> str:
    """Encrypt with the active key; ``context`` (e.g. ``members.phone``) is bound to it."""
    ring = ring or key_ring()
    nonce = os.urandom(12)
    sealed = _cipher(ring.keys[ring.active]).encrypt(
        nonce, plaintext.encode("utf-8"), context.encode()
    )
    return f"{VERSION}.{ring.active}.{_b64(nonce + sealed)}"


def key_id_of(token: str) -> str:
    parts = token.split(".", 2)
    if len(parts) != 3 or parts[0] != VERSION:
        raise DecryptionError("not a value encrypted by Kopilka")
    return parts[1]


def decrypt(token: str, context: str, ring: KeyRing | None = None) -> str:
    ring = ring or key_ring()
    key_id = key_id_of(token)
    key = ring.keys.get(key_id)
    if key is None:
        raise DecryptionError(
            f"{context}: encrypted with key {key_id!r}, which is not in KOPILKA_DATA_KEYS"
        )
    raw = _b64decode(token.split(".", 2)[2])
    try:
        plain = _cipher(key).decrypt(raw[:12], raw[12:], context.encode())
    except InvalidTag as exc:
        raise DecryptionError(f"{context}: the value does not open with key {key_id!r}") from exc
    return plain.decode("utf-8")


# ---------------------------------------------------------------------- blind indexes

_SPACES = re.compile(r"\s+")


def normalise_for_index(kind: str, value: str) -> str:
    """The form a value is indexed in: exact look-ups must normalise the same way."""
    if kind == "email":
        return value.strip().lower()
    if kind in ("phone", "card"):
        return re.sub(r"[^0-9+]", "", value)
    if kind == "name":
        return _SPACES.sub(" ", value).strip().casefold()
    return value


def blind_index(kind: str, value: str, ring: KeyRing | None = None) -> str:
    """HMAC-SHA256 (hex) of the normalised value, separated by ``kind``."""
    ring = ring or key_ring()
    msg = f"{kind}\x00{normalise_for_index(kind, value)}".encode()
    return hmac.new(ring.index_key, msg, hashlib.sha256).hexdigest()


# ---------------------------------------------------------------------- column types


class Sealed(TypeDecorator[Any]):
    """A column whose values are encrypted on the way in and decrypted on the way out.

    Comparing it in SQL is refused (every encryption differs): compare its blind index."""

    impl = Text
    cache_ok = True

    class comparator_factory(TypeDecorator.Comparator[Any]):
        def operate(self, op: Any, *other: Any, **kwargs: Any) -> Any:
            if op in (operators.is_, operators.is_not) or (
                op in (operators.eq, operators.ne) and other and other[0] is None
            ):
                return super().operate(op, *other, **kwargs)
            raise TypeError(
                "an encrypted column cannot be compared in SQL; use its blind index "
                "(kopilka.security.crypto.blind_index) or kopilka.members.service look-ups"
            )

    def __init__(self, context: str) -> None:
        super().__init__()
        self.context = context

    def to_text(self, value: Any) -> str:
        return str(value)

    def from_text(self, text: str) -> Any:
        return text

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return encrypt(self.to_text(value), self.context)

    def process_result_value(self, value: str | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        return self.from_text(decrypt(value, self.context))


class EncryptedText(Sealed):
    """Text, encrypted at rest."""

    cache_ok = True


class EncryptedDate(Sealed):
    """A date, encrypted at rest (as its ISO form)."""

    cache_ok = True

    def to_text(self, value: Any) -> str:
        if not isinstance(value, dt.date):
            raise TypeError("EncryptedDate takes a datetime.date")
        return value.isoformat()

    def from_text(self, text: str) -> Any:
        return dt.date.fromisoformat(text)
