"""The demo's API keys: the same ones on every start against the same database.

Kopilka stores only a hash of a key, so the demo keeps the keys it made in a file beside
its database, readable by its owner only (mode 0600, like an SSH key), and on a restart
shows them again only if the database still takes them (same name, role and store; not
revoked, expired or rotated). A key it cannot show again is replaced, and every other live
key the demo made of that kind is revoked: however often the demo starts, its database
holds one live admin key and one live till key.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from kopilka.apikeys.queries import ApiKey, live_keys_like
from kopilka.apikeys.service import create_key, revoke_key, valid_key

ACTOR = "system:demo"


@dataclass(frozen=True)
class DemoKey:
    slot: str  # its name in the file
    name: str
    role: str
    store: str | None = None


ADMIN = DemoKey("admin", "demo", "admin")
TILL = DemoKey("till", "demo till msk-01", "cashier", "msk-01")
DEMO_KEYS = (ADMIN, TILL)


def keys_file(database_url: str) -> Path:
    """Where the demo keeps its keys: beside an SQLite database file (``kopilka-demo.db`` →
    ``kopilka-demo.db.keys``), else ``kopilka-demo.keys`` in the working directory."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return Path(f"{url.database}.keys")
    return Path("kopilka-demo.keys")


def _read(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # none yet, or unreadable: the keys are made anew
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)}


def _write(path: Path, keys: dict[str, str]) -> None:
    """Replace the file at once, created 0600 (never readable by others, not even briefly)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(keys, f, indent=2)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _shows(row: ApiKey, spec: DemoKey) -> bool:
    return (row.name, row.role, row.store_code) == (
        spec.name,
        spec.role,
        spec.store,
    ) and row.replaced_by is None


def demo_keys(session: Session, path: Path) -> dict[str, str]:
    """The demo's keys in clear by slot (``admin``, ``till``): those kept in ``path`` that
    the database still takes, new ones for the rest (the file is rewritten). Other live keys
    the demo made of the same kinds are revoked. Not committed: commit before serving."""
    kept = _read(path)
    keys: dict[str, str] = {}
    for spec in DEMO_KEYS:
        key = kept.get(spec.slot, "")
        row = valid_key(session, key) if key else None
        if row is None or not _shows(row, spec):
            row, key = create_key(session, spec.name, spec.role, spec.store, created_by=ACTOR)
        # the demo's own (earlier versions made theirs without saying so)
        stale = live_keys_like(session, spec.name, spec.role, ACTOR, row.id)
        for key_id in stale:
            revoke_key(session, key_id, actor=ACTOR)
        keys[spec.slot] = key
    _write(path, keys)
    return keys
