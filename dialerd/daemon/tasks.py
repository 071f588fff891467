"""Who owns the daemon's tasks.

Two kinds: the few long-running loops (core, ticker, state publisher),
each owned by the run's exit stack through :func:`background`, so they are
cancelled and awaited in the reverse order they started, even when start-up
fails half-way; and the many short I/O tasks (a store write, an Originate
waiting for its verdict), kept in a :class:`TaskSet`.

Not an ``asyncio.TaskGroup`` for the short ones: a TaskGroup cancels all its
tasks when one fails, and one failed store write must not cancel the
Originates in flight or end the daemon.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import structlog

log = structlog.get_logger("dialerd")


class TaskSet:
    """Fire-and-forget tasks with a reference kept (asyncio holds only weak
    ones, so an unreferenced task can vanish mid-write), their failures
    logged rather than left for the garbage collector, and a way to wait for
    them before the resources they use are closed."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Started at once; tasks start in spawn order, which is what keeps
        an outcome's write ahead of its disposition's."""
        t = asyncio.create_task(coro)
        self._tasks.add(t)
        t.add_done_callback(self._done)
        return t

    def _done(self, t: asyncio.Task[Any]) -> None:
        self._tasks.discard(t)
        if not t.cancelled() and (exc := t.exception()) is not None:
            log.error("task.failed", tasks=self.name, task=t.get_name(), exc_info=exc)

    def pending(self) -> list[asyncio.Task[Any]]:
        return [t for t in self._tasks if not t.done()]

    async def cancel(self) -> int:
        """Cancel what is left and wait for it; returns how many were left."""
        left = self.pending()
        for t in left:
            t.cancel()
        if left:
            await asyncio.wait(left)
        return len(left)


async def settle(*sets: TaskSet, rounds: int = 50, step_s: float = 0.2) -> None:
    """Wait (at most ``rounds * step_s``) for the tasks of ``sets`` to end,
    tasks they spawn meanwhile included: a finished Originate queues an
    event, a store write may start another."""
    for _ in range(rounds):
        pending = [t for s in sets for t in s.pending()]
        if not pending:
            return
        await asyncio.wait(pending, timeout=step_s)


@asynccontextmanager
async def background(coro: Coroutine[Any, Any, Any], name: str) -> AsyncIterator[asyncio.Task[Any]]:
    """A long-running task for the length of a block: cancelled and awaited
    on the way out. A loop that died with an error is logged then, and does
    not mask the reason the block is leaving."""
    task = asyncio.create_task(coro, name=name)
    try:
        yield task
    finally:
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # we are being cancelled too: pass it on
        except Exception:
            log.exception("task.failed", task=name)
