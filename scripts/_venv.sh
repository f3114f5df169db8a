# Sourced by scripts/*.sh: make the project's virtual environment and put it first on PATH.
#
# .venv holds exactly what requirements.lock pins (hash-checked) and Kopilka itself
# (editable). When the lock or pyproject.toml changed since it was made, it is made anew,
# so nothing the old lock had and the new one dropped lingers.
#
# With KOPILKA_VENV=latest (scripts/test.sh --latest): .venv-latest, made anew on every
# run with the newest releases pyproject.toml allows, to see an upgrade break something
# before the lock moves.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
if ! "$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
  echo "Kopilka needs Python 3.11 or newer (set PYTHON=/path/to/python3.11)." >&2
  exit 1
fi
# No upgrade of pip itself: the venv's own (the interpreter's bundled one) checks the hashes.
PIP_INSTALL=(-m pip install --quiet --disable-pip-version-check)

_kopilka_locked_venv() {
  local venv=.venv stamp=.venv/.kopilka-installed want
  want="$("$PY" -m scripts.lockfile stamp)"
  if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    return 0
  fi
  echo "creating .venv from requirements.lock …" >&2
  rm -rf "$venv"
  "$PY" -m venv "$venv"
  local py="$venv/bin/python"
  # 1. What builds the dependencies published only as source ([tool.kopilka.lock]
  #    build-requires in pyproject.toml), from the lock.
  "$py" -m scripts.lockfile preinstall >"$venv/preinstall.txt"
  "$py" "${PIP_INSTALL[@]}" --require-hashes --no-deps -r "$venv/preinstall.txt" >&2
  # 2. Everything the lock pins, hash-checked. pip still resolves, so a dependency missing
  #    from the lock fails here; sources are built with what step 1 installed.
  "$py" "${PIP_INSTALL[@]}" --require-hashes --no-build-isolation -r requirements.lock >&2
  # 3. Kopilka itself, built by the locked hatchling, adding nothing.
  "$py" "${PIP_INSTALL[@]}" --no-deps --no-build-isolation -e . >&2
  echo "$want" >"$stamp"
}

_kopilka_latest_venv() {
  local venv=.venv-latest
  echo "creating .venv-latest with the newest releases pyproject.toml allows …" >&2
  rm -rf "$venv"
  "$PY" -m venv "$venv"
  local build=() req
  while IFS= read -r req; do build+=("$req"); done < <("$PY" -m scripts.lockfile build-requirements)
  # --upgrade: the interpreter's bundled setuptools would otherwise satisfy "setuptools".
  "$venv/bin/python" "${PIP_INSTALL[@]}" --upgrade --upgrade-strategy eager \
    -e ".[dev]" "${build[@]}" >&2
}

if [ "${KOPILKA_VENV:-locked}" = "latest" ]; then
  _kopilka_latest_venv
  VENV="$ROOT/.venv-latest"
else
  _kopilka_locked_venv
  VENV="$ROOT/.venv"
fi
export PATH="$VENV/bin:$PATH"
