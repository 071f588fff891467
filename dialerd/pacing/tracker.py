"""Incremental pacing state: what the core knows about a campaign's calls and
agents, kept so that a pacing decision never scans agents, calls or leads.

The core owns one :class:`PacingTracker` per campaign and tells it about each
change (a dial started or resolved, an agent started or ended a call, a wrap
started or ended, an answer, an abandon). The tracker keeps:

- **aging bins** (``estimators``): busy agents grouped by elapsed talk time and ringing calls
  grouped by elapsed ring time. Starts arrive in time order, so each bin
  boundary is a pointer into a deque of start seconds that only moves
  forward: keeping the bins current costs O(bins) per elapsed second, and
  adding or removing one member costs O(bins) at worst, whatever the number
  of agents, calls or leads;
- **estimators with forgetting**: the ring outcome histogram (answer
  probability and time to answer), a piecewise-constant hazard model of talk
  time (estimated with censoring: calls still in progress count as exposure,
  so early short calls do not bias it), and the wrap time;
- **abandon windows**: answers and abandons over the last hour and per day
  for 30 days, for the closed loop.

Everything here is plain arithmetic on numbers the shells put in events; no
clock is read.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

from dialerd.pacing.estimators import (
    TALK_EDGES,
    AgingBins,
    RateWindows,
    RingEstimator,
    TalkEstimator,
)

#: the number of horizon points a decision looks at (quantiles of the time
#: to answer of a new call)
HORIZON_POINTS = 6
DIAL_RATE_TAU_S = 60.0


class PacingTracker:
    """Everything a policy may read about one campaign, kept incrementally."""

    def __init__(self, ring_timeout_s: float, wrap_s: float, connect_deadline_s: float) -> None:
        self.ring_timeout_s = ring_timeout_s
        self.wrap_cfg_s = wrap_s
        self.connect_deadline_s = connect_deadline_s
        ring_edges = tuple(float(e) for e in range(math.ceil(ring_timeout_s) + 3))
        self.talk = AgingBins(TALK_EDGES)
        self.ring = AgingBins(ring_edges)
        #: wrap end times of agents in wrap, sorted
        self.wrap_ends: list[float] = []
        self.ring_est = RingEstimator(ring_timeout_s)
        self.talk_est = TalkEstimator()
        self.wrap_mean_s = wrap_s
        self.wrap_n = 0
        self.rates = RateWindows.new()
        self.now = 0.0
        self.dial_rate = 0.0
        self._dial_rate_at = 0.0
        self._cache_key: tuple[int, int, int, int] | None = None
        self._tables: Tables | None = None
        #: bumped whenever the tables are rebuilt
        self.tables_serial = 0

    # ---------------------------------------------------------------- hooks
    def dial_started(self, now: float) -> None:
        self.ring.add(now, now)
        # dial rate, exponentially weighted over about a minute
        self.dial_rate = (
            self.dial_rate * math.exp(-max(now - self._dial_rate_at, 0.0) / DIAL_RATE_TAU_S)
            + 1.0 / DIAL_RATE_TAU_S
        )
        self._dial_rate_at = now

    def dial_rate_at(self, now: float) -> float:
        """Dials per second lately."""
        return self.dial_rate * math.exp(-max(now - self._dial_rate_at, 0.0) / DIAL_RATE_TAU_S)

    def dial_ended(self, started_at: float, now: float, answered: bool | None) -> None:
        """``answered`` None: ended without a usable observation."""
        self.ring.remove(started_at)
        if answered is not None:
            self.ring_est.observe(now - started_at, answered)

    def talk_started(self, now: float) -> None:
        self.talk.add(now, now)

    def talk_ended(self, started_at: float, now: float, observe: bool = True) -> None:
        self.talk.remove(started_at)
        if observe:
            self.talk_est.observe(now - started_at)

    def wrap_started(self, until: float) -> None:
        bisect.insort(self.wrap_ends, until)

    def wrap_ended(self, until: float, now: float | None = None) -> None:
        i = bisect.bisect_left(self.wrap_ends, until)
        if i < len(self.wrap_ends) and self.wrap_ends[i] == until:
            del self.wrap_ends[i]

    def wrap_observed(self, wrap_s: float) -> None:
        self.wrap_n += 1
        a = max(0.02, 1.0 / self.wrap_n)
        self.wrap_mean_s += a * (wrap_s - self.wrap_mean_s)

    def answered(self, now: float) -> None:
        self.rates.answered(now)

    def abandoned(self, now: float) -> None:
        self.rates.abandoned(now)

    def advance(self, now: float) -> None:
        self.now = now
        self.talk.advance(now)
        self.ring.advance(now)

    # --------------------------------------------------------------- tables
    def tables(self) -> Tables:
        """Precomputed per-bin probabilities; rebuilt when the estimates moved."""
        key = (
            self.ring_est.version // 25,
            self.talk_est.version // 10,
            int(self.now // 60),
            int(self.wrap_mean_s * 4),
        )
        if self._tables is None or key != self._cache_key:
            self._tables = Tables.build(self)
            self._cache_key = key
            self.tables_serial += 1
        return self._tables


@dataclass(slots=True)
class Tables:
    """What a decision multiplies bin counts with.

    ``xs[k]``: horizon points (seconds from now) at which a new call may be
    answered, equal-probability quantiles of the time to answer;
    ``ring_q[k][e]``: probability that a call ringing for ``e`` s is answered
    within ``xs[k]``; ``talk_p[k][b]``: probability that an agent in talk
    bin ``b`` is free (talk over and wrap done) by ``xs[k] + deadline``.
    """

    xs: list[float]
    p_answer: float
    p_var: float
    ring_q: list[list[float]]
    ring_v: list[list[float]]
    talk_p: list[list[float]]
    talk_v: list[list[float]]
    mean_answer_s: float
    mean_talk_s: float
    #: per horizon point: talk_p then minus ring_q (one dot product with the
    #: concatenated bin counts gives free agents minus answered calls) ...
    comb_mean: list[list[float]]
    #: ... and talk_v then ring_v (the variance)
    comb_var: list[list[float]]
    #: ``fut_g[k]``: integral of the time-to-answer CDF up to ``xs[k]``: calls
    #: dialed later at rate lambda add ``lambda p fut_g[k]`` answers by ``xs[k]``
    fut_g: list[float]

    @classmethod
    def build(cls, t: PacingTracker) -> Tables:
        re_ = t.ring_est
        K = HORIZON_POINTS
        ans = re_.ans
        tot_ans = sum(ans)
        tot = tot_ans + sum(re_.oth)
        n_eff = max(re_.effective_n(), 1.0)
        p = tot_ans / tot if tot > 0 else 0.0
        p_var = p * (1 - p) / n_eff
        # quantiles of the time to answer
        xs: list[float] = []
        if tot_ans > 0:
            cum = 0.0
            j = 0
            for k in range(K):
                target = (k + 0.5) / K * tot_ans
                while j < len(ans) and cum + ans[j] < target:
                    cum += ans[j]
                    j += 1
                frac = (target - cum) / ans[j] if j < len(ans) and ans[j] > 0 else 0.5
                xs.append(j + frac)
        else:
            xs = [t.ring_timeout_s * (k + 0.5) / K for k in range(K)]
        # integral of the time-to-answer CDF
        fut_g: list[float] = []
        for x in xs:
            g = 0.0
            c = 0.0
            for j in range(len(ans)):
                if j >= x:
                    break
                c += ans[j] / tot_ans if tot_ans > 0 else 0.0
                g += c * min(1.0, x - j)
            fut_g.append(g)
        # ringing calls: P(answered within x | still ringing at e)
        nsec = len(ans)
        unresolved = [0.0] * (nsec + 1)
        cum_ans = [0.0] * (nsec + 1)
        for j in range(nsec - 1, -1, -1):
            unresolved[j] = unresolved[j + 1] + ans[j] + re_.oth[j]
        for j in range(nsec):
            cum_ans[j + 1] = cum_ans[j] + ans[j]
        nring = t.ring.nbins
        ring_q: list[list[float]] = []
        ring_v: list[list[float]] = []
        for x in xs:
            row: list[float] = []
            rowv: list[float] = []
            for e in range(nring):
                e0 = min(e, nsec - 1)
                u = unresolved[e0]
                if u <= 0:
                    q = 0.0
                else:
                    hi = e + 0.5 + x
                    jh = min(int(hi), nsec)
                    a = cum_ans[jh] - cum_ans[e0]
                    if jh < nsec:
                        a += ans[jh] * (hi - jh)
                    # half of the current second's answers have happened already
                    a -= 0.5 * ans[e0]
                    q = min(max(a / u, 0.0), 1.0)
                row.append(q)
                rowv.append(q * (1 - q))
            ring_q.append(row)
            ring_v.append(rowv)
        # talking agents: P(free by x + deadline | elapsed)
        haz = t.talk_est.hazards(t.talk.cnt, t.talk)
        edges = TALK_EDGES
        nb = len(edges)
        cumh = [0.0] * nb
        for b in range(1, nb):
            cumh[b] = cumh[b - 1] + haz[b - 1] * (edges[b] - edges[b - 1])

        def big_lambda(a: float) -> float:
            b = bisect.bisect_right(edges, a) - 1
            return cumh[b] + haz[b] * (a - edges[b])

        d = max(t.connect_deadline_s - 0.1, 0.0)
        wrap = t.wrap_mean_s
        talk_p: list[list[float]] = []
        talk_v: list[list[float]] = []
        for x in xs:
            h = x + d - wrap
            row = []
            rowv = []
            for b in range(nb):
                if h <= 0:
                    pr = 0.0
                else:
                    a = t.talk.mean_age_of_bin(b)
                    pr = 1.0 - math.exp(-(big_lambda(a + h) - big_lambda(a)))
                row.append(pr)
                rowv.append(pr * (1 - pr))
            talk_p.append(row)
            talk_v.append(rowv)
        return cls(
            xs=xs,
            p_answer=p,
            p_var=p_var,
            ring_q=ring_q,
            ring_v=ring_v,
            talk_p=talk_p,
            talk_v=talk_v,
            mean_answer_s=re_.mean_answer_time(),
            mean_talk_s=t.talk_est.mean(),
            comb_mean=[tp + [-q for q in rq] for tp, rq in zip(talk_p, ring_q, strict=True)],
            comb_var=[tv + rv for tv, rv in zip(talk_v, ring_v, strict=True)],
            fut_g=fut_g,
        )
