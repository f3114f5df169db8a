"""UUIDv7 identifiers: time-ordered, and increasing within the process even when many are
made in one millisecond (a receipt's entries are listed in the order they were made)."""

from __future__ import annotations

import itertools
import threading
import uuid

from hypothesis import given
from hypothesis import strategies as st

from kopilka.core import ids


def test_ids_made_in_one_millisecond_keep_their_order() -> None:
    # given 20,000 ids made as fast as the process can (many per millisecond)
    made = [ids.uuid7() for _ in range(20_000)]
    # then each comes after the one before, and every one is a version-7, RFC variant UUID
    assert all(a < b for a, b in itertools.pairwise(made))
    assert {(u.version, u.variant) for u in made} == {(7, uuid.RFC_4122)}


def test_ids_made_by_threads_are_distinct_and_increasing_per_thread() -> None:
    # given four threads making ids at once
    out: list[list[uuid.UUID]] = [[] for _ in range(4)]

    def make(i: int) -> None:
        out[i] = [ids.uuid7() for _ in range(5_000)]

    threads = [threading.Thread(target=make, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # then no id is made twice, and each thread's ids increase
    assert len({u for o in out for u in o}) == 20_000
    assert all(a < b for o in out for a, b in itertools.pairwise(o))


@given(
    ms=st.integers(min_value=0, max_value=(1 << 48) - 2),
    rand=st.integers(min_value=0, max_value=(1 << 74) - 1),
    step=st.integers(min_value=1, max_value=1 << 16),
)
def test_a_step_after_an_id_is_a_later_version_7_id(ms: int, rand: int, step: int) -> None:
    # given any UUIDv7 value and a step
    last = ids._compose(ms, rand)
    # when the next value is made that step after it
    after = ids._compose_after(last, step)
    # then it is later, still version 7 with the RFC variant, and within a millisecond
    u = uuid.UUID(int=after)
    assert after > last
    assert (u.version, u.variant) == (7, uuid.RFC_4122)
    assert (after >> 80) - (last >> 80) in (0, 1)
