"""run_in_thread: the call's result or exception, in a pool thread, with the caller's
context variables."""

from __future__ import annotations

import asyncio
import contextvars
import threading

import pytest

from kopilka.core import threads
from kopilka.core.config import get_settings

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


def _seen(x: int, *, y: int) -> tuple[str, str, int]:
    return request_id.get(), threading.current_thread().name, x + y


def test_the_result_the_context_and_the_thread() -> None:
    async def call() -> tuple[str, str, int]:
        request_id.set("req-7")
        return await threads.run_in_thread(_seen, 2, y=3)

    # when a request's call runs in the pool
    seen, thread, total = asyncio.run(call())
    # then it saw the request's context, ran in a pool thread, and answered
    assert seen == "req-7"
    assert thread.startswith("kopilka-db")
    assert total == 5
    # and the caller's context is its own: the thread's changes do not leak back
    assert request_id.get() == "-"


def test_an_exception_reaches_the_caller() -> None:
    def boom() -> None:
        raise LookupError("no such receipt")

    with pytest.raises(LookupError, match="no such receipt"):
        asyncio.run(threads.run_in_thread(boom))


def test_the_pool_is_as_large_as_the_database_pool() -> None:
    settings = get_settings()
    assert threads.pool()._max_workers == settings.db_pool_size + settings.db_max_overflow
