"""requirements.lock and the requirements it is made from, read with the standard library only.

The set-up scripts run this with the bare interpreter that creates ``.venv`` (nothing
installed yet, so no ``packaging``); ``scripts/lock_report.py`` adds what needs it.

    python3 -m scripts.lockfile build-requirements   # what scripts/lock.sh locks beside pyproject's
                                                     # dependencies
    python3 -m scripts.lockfile preinstall           # the locked entries of [tool.kopilka.lock]
                                                     # build-requires, with hashes
    python3 -m scripts.lockfile stamp                # changes when .venv must be made anew

Run from the repository's root.
"""

from __future__ import annotations

import hashlib
import re
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements.lock"
PYPROJECT = ROOT / "pyproject.toml"

_ENTRY = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^\s;]+)\s*(?:;(?P<marker>.*))?$"
)
# The name at the head of a requirement (`editables~=0.3` → `editables`).
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


@dataclass(frozen=True)
class LockEntry:
    """One pinned distribution of the lock: ``name==version ; marker`` and its hashes."""

    name: str  # normalised (PEP 503): lower case, runs of -_. as one -
    version: str
    marker: str | None  # None: wanted everywhere
    text: str  # the entry exactly as the lock writes it, hashes included


def canonical(name: str) -> str:
    """A distribution's name as PEP 503 compares it."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    """The normalised name a requirement asks for (``editables~=0.3`` → ``editables``)."""
    match = _NAME.match(requirement)
    if match is None:
        raise ValueError(f"not a requirement: {requirement!r}")
    return canonical(match[1])


def read_lock(path: Path = LOCK) -> list[LockEntry]:
    """Every entry of a lock written by ``uv pip compile --generate-hashes`` (or pip-compile).

    An entry is a ``name==version`` line continued by backslashes over its ``--hash`` lines;
    comments (``# via …``) are not part of it.
    """
    entries: list[LockEntry] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line[0].isspace() or line.startswith("-"):
            raise ValueError(f"{path}:{i}: expected `name==version`, found {line!r}")
        block = [line]
        while block[-1].rstrip().endswith("\\") and i < len(lines):
            nxt = lines[i]
            if nxt.lstrip().startswith("#"):
                break  # a comment ends an entry even after a stray `\`
            block.append(nxt)
            i += 1
        head = block[0].rstrip().removesuffix("\\").strip()
        match = _ENTRY.match(head)
        if match is None:
            raise ValueError(f"{path}:{i}: not a pinned requirement: {head!r}")
        marker = (match["marker"] or "").strip() or None
        text = "\n".join(block).rstrip().removesuffix("\\").rstrip()
        entries.append(LockEntry(canonical(match["name"]), match["version"], marker, text))
    return entries


def _pyproject(path: Path = PYPROJECT) -> dict[str, Any]:
    with path.open("rb") as f:
        return tomllib.load(f)


def locked_build_requires(path: Path = PYPROJECT) -> list[str]:
    """``[tool.kopilka.lock] build-requires``: what builds a dependency published only as
    source, or what Kopilka's backend asks for to install it editable. Installed first."""
    lock = _pyproject(path).get("tool", {}).get("kopilka", {}).get("lock", {})
    return list(lock.get("build-requires", []))


def build_requirements(path: Path = PYPROJECT) -> list[str]:
    """What the lock holds beside the project's dependencies: Kopilka's own build backend
    (``[build-system] requires``), so its editable install needs nothing unpinned, and
    :func:`locked_build_requires`."""
    return [*_pyproject(path)["build-system"]["requires"], *locked_build_requires(path)]


def project_requirements(path: Path = PYPROJECT) -> list[str]:
    """Everything the lock is made from: pyproject.toml's dependencies, its ``dev`` extra
    and :func:`build_requirements`."""
    project = _pyproject(path)["project"]
    return [
        *project["dependencies"],
        *project["optional-dependencies"]["dev"],
        *build_requirements(path),
    ]


def stamp() -> str:
    """A digest of what .venv is made from: the lock and pyproject.toml."""
    digest = hashlib.sha256()
    for path in (LOCK, PYPROJECT):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def main(argv: list[str]) -> int:
    if argv == ["stamp"]:
        print(stamp())
        return 0
    if argv == ["build-requirements"]:
        print("\n".join(build_requirements()))
        return 0
    if argv == ["preinstall"]:
        wanted = {requirement_name(r) for r in locked_build_requires()}
        found = [e for e in read_lock() if e.name in wanted]
        missing = wanted - {e.name for e in found}
        if missing:
            print(
                f"requirements.lock lacks {', '.join(sorted(missing))}: run `bash scripts/lock.sh`",
                file=sys.stderr,
            )
            return 1
        print("\n".join(e.text for e in found))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
