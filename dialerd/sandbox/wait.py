"""``until()``: the one way tests and benches wait for something to happen
(and ``pid_alive()``, whether a process they wait on is still there).

A test that sleeps a fixed time and then looks is either slow (the sleep is
long enough for a loaded machine) or flaky (it is not). Polling a condition
until a deadline is neither: it returns as soon as the condition holds, and
the deadline only bounds how long a broken run takes to fail.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar, overload

T = TypeVar("T")


@overload
async def until(
    pred: Callable[[], Awaitable[T]],
    timeout: float,
    what: str | Callable[[], str],
    *,
    interval: float = ...,
) -> T: ...


@overload
async def until(
    pred: Callable[[], T], timeout: float, what: str | Callable[[], str], *, interval: float = ...
) -> T: ...


async def until(
    pred: Callable[[], object],
    timeout: float,
    what: str | Callable[[], str],
    *,
    interval: float = 0.1,
) -> object:
    """Call ``pred`` (sync, or async: its result is awaited) every
    ``interval`` seconds until it returns something truthy, and return that.

    After ``timeout`` seconds raise :class:`AssertionError` naming ``what``
    (or what it returns, if a callable: the state worth showing, read at the
    deadline) and the last value seen, so a failed wait says what it waited
    for. The predicate is always tried once more at the deadline, so a slow
    poll (a store query on a loaded machine) never loses its last chance.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            said = what() if callable(what) else what
            raise AssertionError(
                f"timed out after {timeout:g} s waiting for {said} (last value: {value!r})"
            )
        await asyncio.sleep(min(interval, remaining))


def pid_alive(pid: int) -> bool:
    """Whether a process of that id exists (one of another user's too)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
