"""How the running environment differs from requirements.lock.

    .venv-latest/bin/python -m scripts.lock_report   # what scripts/test.sh --latest prints

Prints one line per difference, ``name: locked -> installed``, for every locked release
whose environment markers apply to this interpreter and platform, and for what is
installed but not locked. Used by tests/test_lock.py too.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from importlib import metadata

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.version import Version

from scripts.lockfile import LOCK, LockEntry, canonical, read_lock

# Installed in every venv but not locked: the venv's own installer (the interpreter's
# bundled pip) and Kopilka itself (editable, from this checkout).
NOT_LOCKED = frozenset({"pip", "kopilka"})


@dataclass(frozen=True)
class Difference:
    name: str
    locked: str | None  # None: installed but not locked
    installed: str | None  # None: locked but not installed

    def __str__(self) -> str:
        locked = self.locked or "(not locked)"
        return f"{self.name}: {locked} -> {self.installed or '(not installed)'}"


def applies_here(entry: LockEntry) -> bool:
    """Whether this interpreter and platform want the entry (its marker holds here)."""
    return entry.marker is None or Marker(entry.marker).evaluate()


def locked_here(entries: list[LockEntry] | None = None) -> dict[str, str]:
    """Name → locked version of every entry that applies here.

    A universal lock may hold one name at several versions under exclusive markers
    (numpy for Python 3.11 and for 3.12+); at most one of them may apply.
    """
    result: dict[str, str] = {}
    for entry in read_lock(LOCK) if entries is None else entries:
        if not applies_here(entry):
            continue
        if entry.name in result:
            raise ValueError(f"{entry.name} is locked twice for this environment")
        result[entry.name] = entry.version
    return result


def installed() -> dict[str, str]:
    """Name → version of every distribution this interpreter sees."""
    return {canonical(d.metadata["Name"]): d.version for d in metadata.distributions()}


def differences(
    locked: dict[str, str] | None = None, present: dict[str, str] | None = None
) -> list[Difference]:
    """Every way ``present`` (default: this environment) differs from ``locked`` (default:
    the lock's entries that apply here), by name."""
    locked = locked_here() if locked is None else locked
    present = installed() if present is None else present
    found: list[Difference] = []
    for name in sorted(locked.keys() | (present.keys() - NOT_LOCKED)):
        want, have = locked.get(name), present.get(name)
        if want is None or have is None or Version(want) != Version(have):
            found.append(Difference(name, want, have))
    return found


def unmet(requirements: list[str], entries: list[LockEntry]) -> list[str]:
    """Each requirement that the lock does not satisfy, said why: a name it does not hold, or
    a locked version outside the requirement's range (a stale lock, after pyproject.toml
    changed). Every entry of a name must satisfy it: a universal lock picks one per
    environment."""
    problems: list[str] = []
    for raw in requirements:
        req = Requirement(raw)
        versions = [e.version for e in entries if e.name == canonical(req.name)]
        if not versions:
            problems.append(f"{raw}: not in the lock")
        for version in versions:
            if not req.specifier.contains(version, prereleases=True):
                problems.append(f"{raw}: locked {version}")
    return problems


def main() -> int:
    found = differences()
    where = sys.prefix
    if not found:
        print(f"{where}: every installed version equals requirements.lock")
        return 0
    print(f"{where} differs from requirements.lock in {len(found)} (locked -> installed):")
    for diff in found:
        print(f"  {diff}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
