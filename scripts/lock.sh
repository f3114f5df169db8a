#!/usr/bin/env bash
# Refresh requirements.lock: the exact versions, with their hashes, that .venv (the demo,
# the tests) and CI install.
#
#   bash scripts/lock.sh                         # keep every pin; lock only what pyproject.toml
#                                                # added or changed (deterministic: re-running
#                                                # it on the same files changes nothing)
#   bash scripts/lock.sh --upgrade               # every package to the newest release allowed
#   bash scripts/lock.sh --upgrade-package NAME  # one package (and what it needs)
#
# It runs `uv pip compile` (uv pinned by scripts/uv-requirements.txt, installed hash-checked
# into a throwaway venv) over pyproject.toml's dependencies, its `dev` extra, its build
# backend and [tool.kopilka.lock] build-requires, for every platform and Python 3.11+
# (--universal: one lock serves Linux, macOS and Windows), with the hashes of every file of
# each release. Extra arguments go to `uv pip compile`. The next `bash scripts/test.sh` or
# `bash scripts/demo.sh` rebuilds .venv from the new lock.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
if ! "$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
  echo "Kopilka needs Python 3.11 or newer (set PYTHON=/path/to/python3.11)." >&2
  exit 1
fi
TOOLS="$(mktemp -d)"
trap 'rm -rf "$TOOLS"' EXIT
"$PY" -m venv "$TOOLS/venv"
"$TOOLS/venv/bin/python" -m pip install --quiet --disable-pip-version-check \
  --require-hashes -r scripts/uv-requirements.txt
# Kopilka's build requirements come on standard input: uv then writes no `# via` line with a
# temporary path for them, so the same inputs give the same file.
"$PY" -m scripts.lockfile build-requirements |
  "$TOOLS/venv/bin/uv" pip compile --no-config --quiet \
    pyproject.toml - --extra dev \
    --universal --python-version 3.11 --generate-hashes \
    --custom-compile-command "bash scripts/lock.sh" \
    --output-file requirements.lock "$@"
echo "requirements.lock: $(grep -c '==' requirements.lock) pinned releases" >&2
