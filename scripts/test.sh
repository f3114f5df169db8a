#!/usr/bin/env bash
# Run the whole test suite twice: on SQLite, then on PostgreSQL, in .venv as
# requirements.lock pins it. Extra arguments go to pytest.
#
#   bash scripts/test.sh [pytest args]           # the locked releases (what CI runs)
#   bash scripts/test.sh --latest [pytest args]  # the newest releases pyproject.toml allows,
#                                                # in .venv-latest; ends with how they differ
#                                                # from the lock
#
# The PostgreSQL pass creates and drops its own database on KOPILKA_TEST_PG_URL (default
# postgresql://postgres@127.0.0.1:5432/postgres) and runs even when the SQLite pass failed;
# the command fails when either did. When CI is set (or KOPILKA_REQUIRE_POSTGRES=1), an
# unreachable PostgreSQL fails the run; elsewhere the PostgreSQL pass is skipped and the
# last lines of the output say so.
LATEST=0
if [ "${1:-}" = "--latest" ]; then
  LATEST=1
  shift
  export KOPILKA_VENV=latest
fi
source "$(dirname "$0")/_venv.sh"
bash scripts/system-deps.sh  # chromium, zbarimg, pdftoppm, a font: the tests run them for real
PG_URL="${KOPILKA_TEST_PG_URL:-postgresql://postgres@127.0.0.1:5432/postgres}"
export KOPILKA_TEST_PG_URL="$PG_URL"

PYTEST=(python -m pytest)
if [ "$LATEST" = 1 ]; then
  # These tests compare the running environment with the lock; here it is not the lock by
  # design, and the report at the end lists how it differs instead.
  LOCK_TESTS="tests/test_lock.py::TestTheEnvironmentIsTheLock"
  PYTEST+=(--deselect "$LOCK_TESTS")
  echo "--latest: deselected $LOCK_TESTS (.venv-latest is not the lock; see the report at the end)"
fi

echo "=== tests on SQLite ==="
sqlite_status=0
KOPILKA_TEST_DB=sqlite "${PYTEST[@]}" "$@" || sqlite_status=$?

echo "=== tests on PostgreSQL ==="
pg_status=0
pg_result=""  # set when the pass did not run: why, for the summary
if python - "$PG_URL" <<'PY'
import sys, psycopg
try:
    psycopg.connect(sys.argv[1], connect_timeout=5).close()
except Exception as exc:  # noqa: BLE001
    print(f"PostgreSQL unreachable at {sys.argv[1]}: {exc}", file=sys.stderr)
    sys.exit(1)
PY
then
  KOPILKA_TEST_DB=postgresql "${PYTEST[@]}" "$@" || pg_status=$?
elif [ -n "${CI:-}" ] || [ "${KOPILKA_REQUIRE_POSTGRES:-0}" = "1" ]; then
  pg_status=1
  pg_result="FAILED: unreachable, and required here (CI or KOPILKA_REQUIRE_POSTGRES=1)"
else
  pg_result="NOT RUN: unreachable"
fi

if [ "$LATEST" = 1 ]; then
  echo "=== .venv-latest against requirements.lock ==="
  python -m scripts.lock_report
fi

outcome() {  # a pass's exit status in words
  case "$1" in
    0) echo "passed" ;;
    5) echo "FAILED: no tests ran (pytest exit 5)" ;;
    *) echo "FAILED (pytest exit $1)" ;;
  esac
}
echo "=== summary ==="
echo "SQLite:     $(outcome "$sqlite_status")"
echo "PostgreSQL: ${pg_result:-$(outcome "$pg_status")}"
if [ -n "$pg_result" ] && [ "$pg_status" = 0 ]; then
  cat <<EOF

!!! ================================================================================= !!!
!!! The PostgreSQL half of the suite did NOT run: nothing answers at
!!!   $PG_URL
!!! Only the SQLite pass ran. Start PostgreSQL or set KOPILKA_TEST_PG_URL. In CI (CI set),
!!! or with KOPILKA_REQUIRE_POSTGRES=1, this is a failure.
!!! ================================================================================= !!!
EOF
fi
[ "$sqlite_status" = 0 ] && [ "$pg_status" = 0 ]
