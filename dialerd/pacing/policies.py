"""Pacing policies: how many calls to place now, from a snapshot.

A policy sees only numbers the core keeps as running counters (and the
campaign's :class:`~dialerd.pacing.tracker.PacingTracker`, whose aggregates
are kept incrementally), so a decision costs the same with ten leads or ten
million. Policies may keep state between decisions (a controller's dial
level, the predictive engine's risk threshold) but never do I/O and never
read a clock: ``now`` is in the snapshot.

- ``progressive``: one line per ready agent;
- ``ratio``: a fixed number of lines per ready agent;
- ``vicidial``: VICIdial's ADAPT_HARD_LIMIT adaptive dial level, re-implemented
  from its published logic (the honest baseline);
- ``soonfree``: Issabel CallCenter's predictor (free agents plus agents whose
  call has very probably ended, under an exponential talk time);
- ``predictive``: dialerd's own engine, see :mod:`dialerd.pacing.predictive`.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from dialerd.pacing.tracker import PacingTracker

if TYPE_CHECKING:
    pass


@dataclass(frozen=True, slots=True)
class PacingSnapshot:
    now: float
    agents_logged_in: int
    agents_ready: int
    agents_talking: int
    agents_wrap: int
    #: originated, not answered yet
    calls_dialing: int
    #: answered, waiting for an agent
    calls_waiting: int
    #: every live call of the campaign, connected ones included
    lines_in_use: int
    max_lines: int
    dial_ratio: float
    #: the campaign's incremental pacing state (None in hand-built snapshots)
    tracker: PacingTracker | None = None
    abandon_target: float = 0.03
    #: logged-in agents on pause (counted in ``agents_logged_in``)
    agents_paused: int = 0
    #: blended: inbound callers waiting for these agents, and inbound
    #: arrivals per second expected to claim them (each queue's share by
    #: the part of its agents that work for this campaign)
    inbound_waiting: float = 0.0
    inbound_rate: float = 0.0
    #: blended: this campaign's agents on an inbound call (reserved or talking)
    inbound_busy: int = 0
    #: blended: how long the longest-waiting caller of these queues has waited
    inbound_oldest_wait_s: float = 0.0
    #: blended, since the queues were loaded (cumulative: a policy that wants
    #: a recent service level differences them): callers answered within the
    #: target, and callers the level counts (answered, abandoned after
    #: ``within_s``, sent to a fallback)
    inbound_sl_met: int = 0
    inbound_sl_counted: int = 0
    #: the strictest target of these queues: share, and seconds (0: no queue)
    inbound_sl_target: float = 0.0
    inbound_within_s: float = 0.0

    @property
    def inbound_now(self) -> int:
        """Waiting callers as whole agents they claim (a share rounds up:
        a caller is served by one agent, never by part of one)."""
        return math.ceil(self.inbound_waiting - 1e-9)


@dataclass(frozen=True, slots=True)
class InboundDemand:
    """What the inbound queues ask of one campaign's agents (filled by the
    core's ``inbound.demand``; the snapshot's ``inbound_*`` fields)."""

    waiting: float = 0.0
    rate: float = 0.0
    busy: int = 0
    oldest_wait_s: float = 0.0
    sl_met: int = 0
    sl_counted: int = 0
    sl_target: float = 0.0
    within_s: float = 0.0


class Policy(Protocol):
    name: str

    def calls_to_place(self, s: PacingSnapshot) -> int:
        """New calls to originate now (>= 0, within the line limit)."""
        ...


def _cap(n: int, s: PacingSnapshot) -> int:
    return max(0, min(n, s.max_lines - s.lines_in_use))


class Progressive:
    """One line per ready agent: never abandons while agents stay logged in."""

    name = "progressive"

    def calls_to_place(self, s: PacingSnapshot) -> int:
        return _cap(s.agents_ready - s.calls_dialing - s.calls_waiting - s.inbound_now, s)


class Ratio:
    """``dial_ratio`` lines per ready agent (VICIdial's fixed dial level)."""

    name = "ratio"

    def calls_to_place(self, s: PacingSnapshot) -> int:
        target = math.ceil(s.dial_ratio * max(s.agents_ready - s.inbound_now, 0) - 1e-9)
        return _cap(target - s.calls_dialing - s.calls_waiting, s)


class Vicidial:
    """VICIdial's ADAPT_HARD_LIMIT controller (AST_VDadapt + AST_VDauto_dial).

    Every second a sample of (ready agents, waiting calls) goes into a
    15-sample window; every 15 s ``diff = avg ready - avg waiting`` and the
    level is multiplied by ``1 + diff / agents`` (intensity 0), then clamped
    to [1.0, max_level]. Drop brakes: halve the level when more than 50% of
    the last minute's answered calls (more than 20 of them) were dropped;
    set it to 1.0 while today's drop rate is above the target (after 50
    calls). Every 2.5 s: ``round(level x active agents) - calls in
    progress`` new calls (calls connected to agents count as in progress).

    Blended (AST_VDauto_dial.pl, campaigns that allow inbound): the calls
    in progress include every live call of the campaign's in-groups,
    waiting or with an agent, except while an agent of the campaign is
    ready (its "BLENDED-OUTBOUND-AGENTS-WAITING OVERRIDE": then only the
    outbound calls count); the waiting calls the level adapts on include
    the inbound ones waiting; ``queue_no_dial`` (``inbound_queue_no_dial``)
    places nothing while an inbound caller waits.
    """

    name = "vicidial"

    def __init__(
        self, max_level: float = 3.0, intensity: float = 0.0, queue_no_dial: bool = False
    ) -> None:
        """``queue_no_dial``: VICIdial's ``inbound_queue_no_dial`` switch."""
        self.max_level = max_level
        self.queue_no_dial = queue_no_dial
        self.intensity = intensity
        self.level = 1.0
        self.samples: deque[tuple[int, int]] = deque(maxlen=15)
        self.next_sample = -math.inf
        self.next_adapt = -math.inf
        self.next_dial = -math.inf
        self.minute: deque[tuple[float, bool]] = deque()

    def calls_to_place(self, s: PacingSnapshot) -> int:
        now = s.now
        if now >= self.next_sample:
            self.samples.append((s.agents_ready, s.calls_waiting + s.inbound_now))
            self.next_sample = now + 1.0
        if now >= self.next_adapt:
            self.next_adapt = now + 15.0
            self._adapt(s)
        if now < self.next_dial:
            return 0
        self.next_dial = now + 2.5
        agents = s.agents_logged_in - s.agents_paused
        # VICIdial counts the live calls of a campaign's inbound groups
        # (waiting or with an agent) against its dial target, unless an
        # agent is ready (AST_VDauto_dial.pl)
        inbound = 0 if s.agents_ready > 0 else s.inbound_now + s.inbound_busy
        want = round(self.level * agents) - s.lines_in_use - inbound
        if self.queue_no_dial and s.inbound_now > 0:
            return 0  # inbound_queue_no_dial: no dialing while a caller waits
        return _cap(want, s)

    def _adapt(self, s: PacingSnapshot) -> None:
        agents = s.agents_logged_in - s.agents_paused
        if self.samples and agents > 0:
            ready = sum(r for r, _ in self.samples) / len(self.samples)
            waiting = sum(w for _, w in self.samples) / len(self.samples)
            diff = ready - waiting
            self.level *= 1.0 + diff / agents * (1.0 + self.intensity / 20.0)
        self.level = min(max(self.level, 1.0), self.max_level)
        t = s.tracker
        if t is None:
            return
        rates = t.rates
        ans_m = len(rates.hour_ans) - bisect.bisect_left(rates.hour_ans, s.now - 60.0)
        abn_m = len(rates.hour_abn) - bisect.bisect_left(rates.hour_abn, s.now - 60.0)
        if ans_m > 20 and abn_m > 0.5 * ans_m:
            self.level = max(1.0, self.level / 2.0)
        day = int(s.now // 86400)
        d_ans = rates.day_ans[-1][1] if rates.day_ans and rates.day_ans[-1][0] == day else 0
        d_abn = rates.day_abn[-1][1] if rates.day_abn and rates.day_abn[-1][0] == day else 0
        if d_ans >= 50 and d_abn / d_ans > s.abandon_target:
            self.level = 1.0


class SoonFree:
    """Issabel CallCenter's predictor.

    ``free agents + busy agents whose call has ended by (elapsed talk + mean
    time to answer) with probability >= 97% (exponential talk time, its
    unconditional CDF as Issabel computes it) - calls waiting``, less the
    originates still pending (as its CampaignProcess subtracts them).
    Predicts only after 10 completed calls, like Issabel's MIN_MUESTRAS.
    """

    name = "soonfree"

    def __init__(self, probability: float = 0.97) -> None:
        self.probability = probability

    def calls_to_place(self, s: PacingSnapshot) -> int:
        soon = 0
        t = s.tracker
        if t is not None and t.talk_est.n_obs >= 10:
            m = max(t.talk_est.mean(), 1.0)
            tau = t.ring_est.mean_answer_time()
            # 1 - exp(-(a + tau) / m) >= p  <=>  a >= -m ln(1 - p) - tau
            need = -m * math.log(1.0 - self.probability) - tau
            soon = _count_older(t, need)
        n = s.agents_ready + soon - s.calls_waiting - s.calls_dialing - s.inbound_now
        return _cap(n, s)


def _count_older(t: PacingTracker, age: float) -> int:
    """Busy agents whose elapsed talk is at least ``age`` (bin resolution,
    linear inside the bin)."""
    bins = t.talk
    edges = bins.edges
    if age <= 0:
        return sum(bins.cnt)
    b = bisect.bisect_right(edges, age) - 1
    total = float(sum(bins.cnt[b + 1 :]))
    if b + 1 < len(edges):
        frac = (edges[b + 1] - age) / (edges[b + 1] - edges[b])
    else:
        frac = 0.5
    total += bins.cnt[b] * frac
    return int(total)
