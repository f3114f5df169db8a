"""The thread pool of the endpoints a till calls on every receipt.

An async endpoint runs its database transaction in a thread. Starlette's
``run_in_threadpool`` (anyio's worker threads, with their capacity limiter and cancel
scopes) cost 0.36 ms of CPU per request on the purchase endpoint with the service taken
out; a ``concurrent.futures`` pool through the event loop's ``run_in_executor`` costs
0.15 ms (measured with wrk at 4 connections against one worker). The pool has as many
threads as the database pool has connections, so that a burst of receipts waits here,
in order, rather than for a connection.

The caller's context variables (the request id of the logs) go with the call, as with
anyio. A cancelled caller (the till hung up) does not stop the thread: the transaction
finishes, and the till's retry finds the receipt recorded.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from kopilka.core.config import get_settings

P = ParamSpec("P")
T = TypeVar("T")

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None


def pool() -> ThreadPoolExecutor:
    """This process's pool (made on first use, sized by the database pool)."""
    global _pool
    if _pool is None:
        with _lock:
            if _pool is None:
                settings = get_settings()
                _pool = ThreadPoolExecutor(
                    max_workers=settings.db_pool_size + settings.db_max_overflow,
                    thread_name_prefix="kopilka-db",
                )
    return _pool


async def run_in_thread(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``fn(*args, **kwargs)`` in the pool, with the caller's context variables."""
    call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(pool(), call)
