"""Store writes that must not be lost, and the store's health.

Every write the core asks for (an outcome, a disposition, a DNC request, a
skip, a release, an agent's event or key) is queued here and written by one
task, in the order asked, each retried with backoff until the store takes
it. While a write fails the store is *down*: the core is told
(``StoreDown``) and places no new call anywhere, and the daemon says so
(log, metrics, MQTT, ``dialerd status``). When everything owed is written,
the core hears ``StoreUp`` and dialing resumes by itself.

Order: a do-not-call request goes first, ahead of anything queued before
it (it is the one write that must survive whatever happens next); then the
writes in the order the core asked, which puts an attempt's outcome ahead
of its disposition (the store applies a disposition to a finished attempt
only).

The queue is in memory: what a SIGKILL during an outage loses is what is
still queued (the README's "Store faults" says what that is and how the
next start closes it). At a normal stop it is written before the store
closes, for as long as the drain allows, and anything left is logged with
what it was.

Some failures are not the store's state but the write's own (a constraint
the row breaks, a bad value): retrying cannot help, so the write is logged
in full as rejected and the queue goes on. They are bugs, and counted.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from dialerd.store.api import StoreApi

log = structlog.get_logger("dialerd")

#: the first retry's delay; doubled after each failure up to the cap
BACKOFF_MIN_S = 0.05
BACKOFF_MAX_S = 2.0
#: a write still failing logs again every this many tries (not every one)
LOG_EVERY_TRIES = 20
#: a store down again within this long of coming up is flapping (its checks
#: pass, the real calls fail): each time, it is checked again only after a
#: longer hold, doubling from 1 s up to the cap, so a lead is not tried
#: in a hot loop
FLAP_WINDOW_S = 10.0
FLAP_HOLD_MAX_S = 30.0


def transient(exc: BaseException) -> bool:
    """A failure of the store's state, which time can mend (locked, disk
    full, I/O error, a corrupt page being repaired): the write is retried.
    Anything else is the write's own (a constraint, a bad value, a bug):
    retrying cannot help."""
    if isinstance(exc, sqlite3.OperationalError | sqlite3.InternalError | OSError):
        return True
    return type(exc) is sqlite3.DatabaseError  # "database disk image is malformed"


def describe(exc: BaseException) -> str:
    """``OperationalError: database is locked``: what the store said."""
    return f"{type(exc).__name__}: {exc}"


#: a store call that clears a failure when it works
Check = Callable[[StoreApi], Awaitable[Any]]


@dataclass(slots=True)
class Write:
    """One write owed to the store. ``run`` performs it (once per try);
    ``done`` gets its result once it succeeds; ``rejected`` the error if
    the store refuses it for good (its own fault, never retried); ``about``
    names it in logs (ids, never a phone number)."""

    op: str
    run: Callable[[StoreApi], Awaitable[Any]]
    about: dict[str, Any] = field(default_factory=dict)
    done: Callable[[Any], None] | None = None
    tries: int = 0
    queued_at: float = 0.0
    rejected: Callable[[BaseException], None] | None = None


class StoreWriter:
    """The queue, its writer task (:meth:`run`) and the store's health.

    ``on_health(reason)`` is called when the store goes down (``reason``)
    and when it is back (None): the shell tells the core and the world."""

    def __init__(
        self,
        store: Callable[[], StoreApi],
        on_health: Callable[[str | None], None],
        *,
        clock: Callable[[], float] = time.time,
        on_failure: Callable[[str], None] | None = None,
    ) -> None:
        self._store = store
        self._on_health = on_health
        self._clock = clock
        self._on_failure = on_failure
        #: DNC requests: written before anything else
        self._first: deque[Write] = deque()
        self._queue: deque[Write] = deque()
        self._wake = asyncio.Event()
        #: why the store is down (None: it is up)
        self.down_reason: str | None = None
        self.down_since: float | None = None
        #: store calls outside the queue that failed, each with the check
        #: that clears it (None: any write that works again)
        self._faults: dict[str, Check | None] = {}
        #: flap damping (monotonic times): see FLAP_WINDOW_S
        self._up_mono: float | None = None
        self._down_mono = 0.0
        self._hold_s = 0.0
        #: writes taken by the store since start, and writes rejected
        self.written = 0
        self.rejected = 0

    # ------------------------------------------------------------- for all

    @property
    def pending(self) -> int:
        return len(self._first) + len(self._queue)

    def submit(self, w: Write, *, first: bool = False) -> None:
        """Queue ``w`` (``first``: ahead of everything not itself first)."""
        w.queued_at = self._clock()
        (self._first if first else self._queue).append(w)
        if self.down_reason is not None:
            log.warning("store.write_queued", op=w.op, pending=self.pending, **w.about)
        self._wake.set()

    def failed(self, op: str, exc: BaseException, check: Check | None = None) -> None:
        """A store call outside the queue failed (a lead fetch, a write-ahead,
        a read the dialing needs): the store is down until ``check`` works
        (the writer tries it with backoff), or, without one, until a write
        works again (the writer probes with a small one)."""
        if self._on_failure is not None:
            self._on_failure(op)
        self._faults[op] = check
        if self.down_reason is None:
            self._down(f"{op}: {describe(exc)}")
        self._wake.set()

    def succeeded(self, op: str, *, write: bool) -> None:
        """A store call outside the queue worked: its own failure is cleared,
        and a ``write`` (a lead fetch, a write-ahead) clears every failure a
        working write answers."""
        self._faults.pop(op, None)
        if write:
            self._writes_work()
        self._maybe_up()

    def _writes_work(self) -> None:
        for op in [op for op, check in self._faults.items() if check is None]:
            del self._faults[op]

    def _maybe_up(self) -> None:
        if self.down_reason is not None and not self.pending and not self._faults:
            self._up()

    # -------------------------------------------------------------- health

    def _down(self, reason: str) -> None:
        mono = time.monotonic()
        if self._up_mono is not None and mono - self._up_mono < FLAP_WINDOW_S:
            self._hold_s = min(max(self._hold_s * 2, 1.0), FLAP_HOLD_MAX_S)
        else:
            self._hold_s = 0.0
        self._down_mono = mono
        self.down_reason = reason
        self.down_since = self._clock()
        log.error("store.down", reason=reason, pending=self.pending, hold_s=self._hold_s)
        self._on_health(reason)

    def _up(self) -> None:
        down_for = self._clock() - (self.down_since or self._clock())
        log.warning(
            "store.up", was=self.down_reason, down_for_s=round(down_for, 3), written=self.written
        )
        self.down_reason = None
        self.down_since = None
        self._up_mono = time.monotonic()
        self._on_health(None)

    # -------------------------------------------------------------- writer

    def _head(self) -> Write | None:
        if self._first:
            return self._first[0]
        if self._queue:
            return self._queue[0]
        return None

    def _pop(self, w: Write) -> None:
        if self._first and self._first[0] is w:
            self._first.popleft()
        else:
            self._queue.popleft()

    async def run(self) -> None:
        """Write what is owed, in order, for as long as the daemon runs. With
        nothing owed while the store is down, check the failures that put it
        down (a small write, or the read that failed) until they clear."""
        delay = BACKOFF_MIN_S
        while True:
            w = self._head()
            if w is not None:
                ok = await self._write(w)
            elif self._faults:
                ok = await self._check()
            else:
                self._maybe_up()
                self._wake.clear()
                await self._wake.wait()
                continue
            if ok:
                delay = BACKOFF_MIN_S
                self._maybe_up()
                continue
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX_S)

    async def _check(self) -> bool:
        """Try every failure's check once; True when all have cleared."""
        if time.monotonic() < self._down_mono + self._hold_s:
            return False  # flapping: hold off a while
        store = self._store()
        for op, check in list(self._faults.items()):
            try:
                if check is None:
                    await store.check_writable(self._clock())
                else:
                    await check(store)
            except Exception as exc:
                if self._on_failure is not None:
                    self._on_failure(f"{op}:check")
                log.debug("store.check_failed", op=op, error=describe(exc))
                return False
            self._faults.pop(op, None)
            if check is None:
                self._writes_work()
        return True

    async def _write(self, w: Write) -> bool:
        """One try of the head write: True when it is done with (written, or
        rejected for good), False to retry it after a pause."""
        try:
            result = await w.run(self._store())
        except Exception as exc:
            if transient(exc):
                return self._retry(w, exc)
            self._pop(w)
            self.rejected += 1
            if self._on_failure is not None:
                self._on_failure(f"{w.op}:rejected")
            log.error(
                "store.write_rejected", op=w.op, error=describe(exc), write=repr(w.run), **w.about
            )
            if w.rejected is not None:
                try:
                    w.rejected(exc)
                except Exception:
                    log.exception("store.write_rejected_failed", op=w.op, **w.about)
            return True
        self._pop(w)
        self.written += 1
        self._writes_work()
        if w.tries:
            log.info(
                "store.write_recovered",
                op=w.op,
                tries=w.tries,
                waited_s=round(self._clock() - w.queued_at, 3),
                **w.about,
            )
        if w.done is not None:
            try:
                w.done(result)
            except Exception:
                log.exception("store.write_done_failed", op=w.op, **w.about)
        return True

    def _retry(self, w: Write, exc: BaseException) -> bool:
        w.tries += 1
        if self._on_failure is not None:
            self._on_failure(w.op)
        if self.down_reason is None:
            self._down(f"{w.op}: {describe(exc)}")
        elif w.tries % LOG_EVERY_TRIES == 0:
            log.warning(
                "store.write_retrying",
                op=w.op,
                tries=w.tries,
                error=describe(exc),
                pending=self.pending,
                **w.about,
            )
        return False

    # ------------------------------------------------------------ shutdown

    async def flush(self, timeout_s: float) -> list[Write]:
        """At a stop: wait (up to ``timeout_s``) for every owed write to be
        written by :meth:`run`; the writes still owed after that are
        returned (and logged one by one: the log is their last record)."""
        deadline = time.monotonic() + timeout_s
        while self.pending and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        left = [*self._first, *self._queue]
        for w in left:
            log.error(
                "store.write_lost_at_exit",
                op=w.op,
                tries=w.tries,
                reason=self.down_reason,
                **w.about,
            )
        return left
