"""Abandon accounting and the 72-hour lock. Pure: every method takes ``now``.

Definitions (what the tests recompute by brute force):

* a *live answer* is an outcome answered by a person
  (:attr:`Outcome.live_answer`: answered, abandoned, customer hang-up) and an
  *abandon* is :attr:`Outcome.abandon` (abandoned, customer hang-up: the
  conservative reading); an abandon is a live answer too;
* **FTC**: abandons / live answers over the rolling 30 days, and over the
  whole campaign;
* **Ofcom**: (abandons + ``fp_rate`` x machine detections) / live answers over
  the rolling 24 hours: ``fp_rate`` is the campaign's estimate of the share
  of AMD "machine" verdicts that were in fact people (each such call was a
  person hung up on). Adding it to the numerator only is the conservative
  reading;
* **hour**: abandons / live answers over the rolling hour, which the pacing
  loop holds too so that abandons are never bunched.

Rolling windows count in buckets of ``resolution`` seconds (1 s for the hour,
10 s for 24 h, 60 s for 30 days): an event at ``t`` counts at ``now`` while
``floor(t / res) > floor(now / res) - window / res``. A window is thus exact
to its resolution and never shorter than its nominal length. Each event is
appended and evicted once: O(1) amortised, memory bounded by window/res.
Events and queries must come in time order (the core's do); a late event is counted in
the latest bucket (it then stays a little longer, the safe side).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from dialerd.core.models import Outcome

HOUR = 3600
DAY = 86400
#: the FTC's rolling period
DAYS_30 = 30 * DAY
#: no call to a number abandoned this recently (unless an agent is guaranteed)
LOCK_S = 72 * HOUR


class RollingCount:
    """Events in a rolling window, bucketed by ``resolution`` seconds."""

    __slots__ = ("_buckets", "_res", "_span", "total")

    def __init__(self, window_s: int, resolution_s: int) -> None:
        if window_s % resolution_s:
            raise ValueError("the window must be a whole number of buckets")
        self._res = resolution_s
        self._span = window_s // resolution_s
        #: [bucket index, count], oldest first
        self._buckets: deque[list[int]] = deque()
        self.total = 0

    def add(self, t: float, n: int = 1) -> None:
        b = math.floor(t / self._res)
        if self._buckets and b <= self._buckets[-1][0]:
            self._buckets[-1][1] += n
        else:
            self._buckets.append([b, n])
        self.total += n

    def count(self, now: float) -> int:
        oldest = math.floor(now / self._res) - self._span  # buckets <= this are out
        q = self._buckets
        while q and q[0][0] <= oldest:
            self.total -= q.popleft()[1]
        return self.total


@dataclass(frozen=True, slots=True)
class WindowRate:
    name: str
    live: int
    abandoned: int
    #: the AMD false-positive estimate added to ``abandoned`` (Ofcom only)
    estimated: float = 0.0

    @property
    def rate(self) -> float:
        return (self.abandoned + self.estimated) / self.live if self.live else 0.0

    def budget(self, target: float) -> int:
        """Abandons that may still happen now with the rate staying <= target:
        the largest k with (A + k) / (N + k) <= target (an abandon is a live
        answer too)."""
        if not 0 < target < 1:
            raise ValueError("target must be in (0, 1)")
        k = (target * self.live - self.abandoned - self.estimated) / (1 - target)
        return max(0, math.floor(k + 1e-9))


@dataclass(frozen=True, slots=True)
class Budget:
    #: abandons allowed now in every window
    allowed: int
    #: the window that binds (the smallest budget)
    binding: str
    rates: tuple[WindowRate, ...]


class AbandonAccounting:
    """One campaign's abandon rates, fed with every attempt's outcome."""

    def __init__(self, ofcom_fp_rate: float = 0.0) -> None:
        if not 0.0 <= ofcom_fp_rate <= 1.0:
            raise ValueError("ofcom_fp_rate is a share in [0, 1]")
        self.ofcom_fp_rate = ofcom_fp_rate
        self.live_total = 0
        self.abandoned_total = 0
        self.machines_total = 0
        self._live = {w: RollingCount(w, r) for w, r in _WINDOWS}
        self._abn = {w: RollingCount(w, r) for w, r in _WINDOWS}
        self._machines_24h = RollingCount(DAY, 10)

    def record(self, outcome: Outcome, now: float) -> None:
        if outcome.live_answer:
            self.live_total += 1
            for c in self._live.values():
                c.add(now)
        if outcome.abandon:
            self.abandoned_total += 1
            for c in self._abn.values():
                c.add(now)
        if outcome is Outcome.MACHINE:
            self.machines_total += 1
            self._machines_24h.add(now)

    def _rate(self, name: str, window: int, now: float) -> WindowRate:
        return WindowRate(name, self._live[window].count(now), self._abn[window].count(now))

    def hour(self, now: float) -> WindowRate:
        return self._rate("hour", HOUR, now)

    def ftc_30d(self, now: float) -> WindowRate:
        return self._rate("ftc_30d", DAYS_30, now)

    def ftc_campaign(self) -> WindowRate:
        return WindowRate("ftc_campaign", self.live_total, self.abandoned_total)

    def ofcom_24h(self, now: float) -> WindowRate:
        m = self._machines_24h.count(now)
        return WindowRate(
            "ofcom_24h",
            self._live[DAY].count(now),
            self._abn[DAY].count(now),
            self.ofcom_fp_rate * m,
        )

    def rates(self, now: float, hour: bool = True) -> tuple[WindowRate, ...]:
        out = (self.ftc_30d(now), self.ftc_campaign(), self.ofcom_24h(now))
        return (self.hour(now), *out) if hour else out

    def budget(self, target: float, now: float, hour: bool = True) -> Budget:
        """How many more abandons are allowed now, staying <= ``target`` in
        every window (the hour too unless ``hour`` is False)."""
        rates = self.rates(now, hour)
        allowed, binding = min((r.budget(target), r.name) for r in rates)
        return Budget(allowed, binding, rates)


#: (window, resolution) of the rolling counts
_WINDOWS: tuple[tuple[int, int], ...] = ((HOUR, 1), (DAY, 10), (DAYS_30, 60))


class AbandonLock:
    """Numbers abandoned in the last 72 hours: not to be called again before
    ``until`` unless the campaign guarantees an agent.

    ``locked`` is a dict lookup; expiry is a deque in time order, so the
    memory is the numbers abandoned in the last 72 h and each is evicted once.
    """

    def __init__(self, lock_s: float = LOCK_S) -> None:
        self.lock_s = lock_s
        self._last: dict[str, float] = {}
        self._order: deque[tuple[float, str]] = deque()

    def abandoned(self, e164: str, now: float) -> None:
        prev = self._last.get(e164)
        if prev is None or now > prev:
            self._last[e164] = now
        self._order.append((now, e164))
        self._expire(now)

    def _expire(self, now: float) -> None:
        q = self._order
        while q and now - q[0][0] >= self.lock_s:
            t, number = q.popleft()
            if self._last.get(number) == t:
                del self._last[number]

    def until(self, e164: str, now: float) -> float | None:
        """When the lock on ``e164`` ends, None if it is not locked at ``now``."""
        self._expire(now)
        t = self._last.get(e164)
        if t is None:
            return None
        end = t + self.lock_s
        return end if now < end else None

    def locked(self, e164: str, now: float) -> bool:
        return self.until(e164, now) is not None

    def __len__(self) -> int:
        return len(self._last)
