"""The ranges of values a board's members shown are counted in (``LeaderboardBucket``),
without I/O: a value's two leading significant digits, in the units the database keeps
amounts in (1/10 000, ``core.money.to_units``). 7 visits, 7.00 and 7.99 roubles each
have a bucket of their own width (70 000 … 79 999 units); 1234.56 roubles lies in
1200.00 … 1299.9999. So a board has at most some 90 buckets per power of ten, and a
member's rank reads the buckets above theirs and the scores within their own.

``BUCKET_SQL`` is the same function in PostgreSQL (the trigger's), tested against this
one."""

from __future__ import annotations

from decimal import Decimal

from kopilka.core.money import from_units, to_units


def bucket_of(units: int) -> int:
    """The first value (in units) of the bucket of ``units``; 0 for every value ≤ 0."""
    if units <= 0:
        return 0
    digits = len(str(units))
    if digits <= 2:
        return units
    step = 10 ** (digits - 2)
    return int(units // step * step)


def bucket_end(units: int) -> int:
    """The first value (in units) after the bucket of ``units``."""
    if units <= 0:
        return 1
    start = bucket_of(units)
    digits = len(str(start))
    return start + (1 if digits <= 2 else 10 ** (digits - 2))


def bounds(value: Decimal) -> tuple[int, Decimal, Decimal]:
    """The bucket of ``value`` (in units), its first value (the lowest of all for 0: it
    holds every value up to zero) and the first value after it."""
    units = to_units(value)
    start = bucket_of(units)
    low = from_units(start) if start > 0 else from_units(-(2**62))
    return start, low, from_units(bucket_end(units))


BUCKET_SQL = """
CREATE OR REPLACE FUNCTION leaderboard_bucket(v bigint) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE
    WHEN v <= 0 THEN 0
    WHEN v < 100 THEN v
    ELSE v / (10::bigint ^ (length(v::text) - 2))::bigint
           * (10::bigint ^ (length(v::text) - 2))::bigint
  END
$$
"""

TRIGGER_SQL = """
CREATE OR REPLACE FUNCTION leaderboard_scores_counted() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  was bigint;
  now_in bigint;
BEGIN
  IF TG_OP <> 'INSERT' AND OLD.visible THEN
    was := leaderboard_bucket(OLD.value);
  END IF;
  IF TG_OP <> 'DELETE' AND NEW.visible THEN
    now_in := leaderboard_bucket(NEW.value);
  END IF;
  IF TG_OP = 'UPDATE' AND was IS NOT DISTINCT FROM now_in
     AND OLD.board = NEW.board AND OLD.period = NEW.period AND OLD.store = NEW.store THEN
    RETURN NULL;  -- the usual receipt: a score moved within its bucket
  END IF;
  IF was IS NOT NULL THEN
    INSERT INTO leaderboard_buckets (board, period, store, bucket, n)
    VALUES (OLD.board, OLD.period, OLD.store, was, -1);
  END IF;
  IF now_in IS NOT NULL THEN
    INSERT INTO leaderboard_buckets (board, period, store, bucket, n)
    VALUES (NEW.board, NEW.period, NEW.store, now_in, 1);
  END IF;
  RETURN NULL;
END
$$;
CREATE TRIGGER leaderboard_scores_counted
AFTER INSERT OR UPDATE OR DELETE ON leaderboard_scores
FOR EACH ROW EXECUTE FUNCTION leaderboard_scores_counted()
"""

DROP_SQL = """
DROP TRIGGER IF EXISTS leaderboard_scores_counted ON leaderboard_scores;
DROP FUNCTION IF EXISTS leaderboard_scores_counted();
DROP FUNCTION IF EXISTS leaderboard_bucket(bigint)
"""


def statements(sql: str) -> list[str]:
    """The statements of ``sql``, split at a ``;`` ending a line outside ``$$`` bodies."""
    out, current, quoted = [], [], False
    for line in sql.strip().splitlines():
        if line.count("$$") % 2:
            quoted = not quoted
        if not quoted and line.rstrip().endswith(";"):
            current.append(line.rstrip()[:-1])
            out.append("\n".join(current))
            current = []
        else:
            current.append(line)
    if current and "".join(current).strip():
        out.append("\n".join(current))
    return out
