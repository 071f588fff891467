"""Incremental pacing state: what the core knows about a campaign's calls and
agents, kept so that a pacing decision never scans agents, calls or leads.

The core owns one :class:`PacingTracker` per campaign and tells it about each
change (a dial started or resolved, an agent started or ended a call, a wrap
started or ended, an answer, an abandon). The tracker keeps:

- **aging bins**: busy agents grouped by elapsed talk time and ringing calls
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
from collections import deque
from dataclasses import dataclass

#: elapsed-talk bin edges (seconds): fine early, where hazards move fast,
#: then geometric. The last bin is open-ended.
TALK_EDGES: tuple[float, ...] = (
    0.0, 3, 6, 10, 15, 20, 30, 40, 50, 65, 80, 100, 125, 150, 180, 220, 270, 330,
    400, 480, 580, 700, 850, 1000, 1250, 1500, 1900, 2400, 3000, 4000, 5500,
)  # fmt: skip
#: the number of horizon points a decision looks at (quantiles of the time
#: to answer of a new call)
HORIZON_POINTS = 6
DIAL_RATE_TAU_S = 60.0


class AgingBins:
    """Members (agents or calls) grouped by the age bin they are in now.

    ``edges[0]`` must be 0. Bin ``b`` holds members whose age is in
    ``[edges[b], edges[b+1])``; the last bin is open-ended. Ages are counted
    from whole start seconds (a member started at 12.7 counts from 12).
    """

    __slots__ = (
        "_index",
        "_keys",
        "_last_sec",
        "_off",
        "_ptr",
        "_secs",
        "cnt",
        "edges",
        "nbins",
        "version",
    )  # fmt: skip

    def __init__(self, edges: tuple[float, ...]) -> None:
        self.edges = edges
        self.nbins = len(edges)
        #: members per bin
        self.cnt = [0] * self.nbins
        #: start seconds in arrival order, and members per start second
        self._keys: deque[int] = deque()
        self._secs: dict[int, int] = {}
        #: global index of each start second in ``_keys``
        self._index: dict[int, int] = {}
        self._off = 0  # global index of _keys[0]
        #: per boundary b (between bin b-1 and b, b >= 1): global index of the
        #: first start second still younger than edges[b]
        self._ptr = [0] * self.nbins
        self._last_sec: int | None = None
        #: bumped on every change of ``cnt`` (lets a decision reuse its sums)
        self.version = 0

    def __len__(self) -> int:
        return sum(self.cnt)

    def add(self, start: float, now: float) -> None:
        s = math.floor(start)
        n = self._secs.get(s)
        if n is None:
            if self._keys and s < self._keys[-1]:
                # out of order (a restart adopting a call): put it with the last key
                s = self._keys[-1]
                n = self._secs[s]
            else:
                self._keys.append(s)
                self._index[s] = self._off + len(self._keys) - 1
                self._secs[s] = 0
                n = 0
        self._secs[s] = n + 1
        self.cnt[self._bin_of(s)] += 1
        self.version += 1
        self.advance(now)

    def remove(self, start: float) -> None:
        s = math.floor(start)
        n = self._secs.get(s)
        if n is None:
            if not self._keys:
                return
            # it was filed under a later key (see ``add``): find the first one after
            i = bisect.bisect_left(self._keys, s)
            if i >= len(self._keys):
                return
            s = self._keys[i]
            n = self._secs[s]
        b = self._bin_of(s)
        if n <= 0 or self.cnt[b] <= 0:
            return
        self.cnt[b] -= 1
        self._secs[s] = n - 1
        self.version += 1
        self._compact()

    def _bin_of(self, s: int) -> int:
        gi = self._index[s]
        b = 0
        ptr = self._ptr
        for k in range(1, self.nbins):
            if ptr[k] > gi:
                b = k
            else:
                break
        return b

    def advance(self, now: float) -> None:
        sec = math.floor(now)
        if sec == self._last_sec:
            return
        self._last_sec = sec
        keys, secs, ptr, cnt, off = self._keys, self._secs, self._ptr, self.cnt, self._off
        end = off + len(keys)
        for b in range(1, self.nbins):
            cutoff = now - self.edges[b]
            p = ptr[b]
            while p < end and keys[p - off] <= cutoff:
                n = secs[keys[p - off]]
                if n:
                    cnt[b - 1] -= n
                    cnt[b] += n
                    self.version += 1
                p += 1
            ptr[b] = p
            if p == off:
                break  # older boundaries cannot have moved further than this one
        self._compact()

    def _compact(self) -> None:
        keys, secs = self._keys, self._secs
        # drop empty start seconds from the front, but never past a pointer
        lowest = self._ptr[-1] if self.nbins > 1 else self._off + len(keys)
        while keys and secs[keys[0]] == 0 and self._off < lowest:
            s = keys.popleft()
            del secs[s]
            del self._index[s]
            self._off += 1

    def mean_age_of_bin(self, b: int) -> float:
        """The age used for bin ``b`` (its middle; the open bin: 1.2 x its edge)."""
        if b + 1 < self.nbins:
            return 0.5 * (self.edges[b] + self.edges[b + 1])
        return self.edges[b] * 1.2 + 1.0


def _pct_weight(halflife: float) -> float:
    return math.pow(2.0, 1.0 / halflife)


class RingEstimator:
    """Ring outcomes by elapsed second: answer probability, time to answer.

    Observations are weighted with exponential forgetting by count (newer
    observations weigh more; ``halflife`` observations halve a weight) using a
    growing weight, so an update is O(1).
    """

    def __init__(self, ring_timeout_s: float, halflife: float = 300.0) -> None:
        self.nsec = math.ceil(ring_timeout_s) + 3
        self.ans = [0.0] * self.nsec
        self.oth = [0.0] * self.nsec
        self.n_obs = 0
        self.n_ans = 0
        self._w = 1.0
        self._g = _pct_weight(halflife)
        #: sum of weights (for the effective sample size)
        self._wsum = 0.0
        self._w2sum = 0.0
        self.version = 0
        #: the earliest and latest answers seen, in seconds after the dial:
        #: the window outside which a ringing call is taken not to answer
        self.min_answer_s = math.inf
        self.max_answer_s = 0.0

    def observe(self, elapsed: float, answered: bool) -> None:
        j = min(max(int(elapsed), 0), self.nsec - 1)
        w = self._w
        if answered:
            self.ans[j] += w
            self.n_ans += 1
            self.min_answer_s = min(self.min_answer_s, elapsed)
            self.max_answer_s = max(self.max_answer_s, elapsed)
        else:
            self.oth[j] += w
        self.n_obs += 1
        self._wsum += w
        self._w2sum += w * w
        self._w *= self._g
        if self._w > 1e100:
            self._rescale()
        self.version += 1

    def _rescale(self) -> None:
        f = 1.0 / self._w
        self.ans = [a * f for a in self.ans]
        self.oth = [o * f for o in self.oth]
        self._wsum *= f
        self._w2sum *= f * f
        self._w = 1.0

    def p_answer(self) -> float:
        tot = sum(self.ans) + sum(self.oth)
        return sum(self.ans) / tot if tot > 0 else 0.0

    def effective_n(self) -> float:
        return self._wsum * self._wsum / self._w2sum if self._w2sum > 0 else 0.0

    def mean_answer_time(self) -> float:
        tot = sum(self.ans)
        if tot <= 0:
            return 8.0
        return sum((j + 0.5) * a for j, a in enumerate(self.ans)) / tot


class TalkEstimator:
    """Talk time as a piecewise-constant hazard over ``TALK_EDGES`` bins.

    Deaths and exposure are kept per bin with forgetting; calls still in
    progress add their exposure at refresh time (censoring), so the model is
    right early in a shift when only the short calls have ended. Not
    memoryless: the chance a call ends in the next seconds depends on how
    long it has lasted already.
    """

    def __init__(self, prior_mean_s: float = 120.0, halflife: float = 400.0) -> None:
        self.edges = TALK_EDGES
        nb = len(self.edges)
        self.deaths = [0.0] * nb
        self.expo = [0.0] * nb
        self.n_obs = 0
        self._w = 1.0
        self._g = _pct_weight(halflife)
        self.prior_mean_s = prior_mean_s
        self.sum_t = 0.0
        self.sum_w = 0.0
        self.version = 0

    def observe(self, duration: float) -> None:
        w = self._w
        edges = self.edges
        nb = len(edges)
        for b in range(nb):
            lo = edges[b]
            if duration < lo:
                break
            hi = edges[b + 1] if b + 1 < nb else math.inf
            if duration < hi:
                self.expo[b] += w * (duration - lo)
                self.deaths[b] += w
                break
            self.expo[b] += w * (hi - lo)
        self.sum_t += w * duration
        self.sum_w += w
        self.n_obs += 1
        self._w *= self._g
        if self._w > 1e100:
            f = 1.0 / self._w
            self.deaths = [d * f for d in self.deaths]
            self.expo = [x * f for x in self.expo]
            self.sum_t *= f
            self.sum_w *= f
            self._w = 1.0
        self.version += 1

    def mean(self) -> float:
        return self.sum_t / self.sum_w if self.sum_w > 0 else self.prior_mean_s

    def hazards(self, in_progress: list[int], bins: AgingBins) -> list[float]:
        """Hazard per bin, with calls in progress as censored exposure."""
        edges = self.edges
        nb = len(edges)
        w = self._w
        expo = list(self.expo)
        # in-progress calls in bin b have spent every earlier bin whole and
        # about half of bin b so far
        cum = 0.0
        for b in range(nb - 1, -1, -1):
            if b + 1 < nb:
                expo[b] += cum * (edges[b + 1] - edges[b])
            c = in_progress[b] * w
            expo[b] += c * (bins.mean_age_of_bin(b) - edges[b])
            cum += c
        # prior: a weak exponential with the observed (or prior) mean, worth
        # half a call's exposure per bin: it only matters where data is thin
        m = self.mean()
        out = []
        for b in range(nb):
            width = (edges[b + 1] - edges[b]) if b + 1 < nb else edges[b]
            px = 0.5 * width * w
            out.append((self.deaths[b] + px / m) / (expo[b] + px))
        return out


@dataclass(slots=True)
class RateWindows:
    """Live answers and abandons over the last hour (exact) and 30 days (per day)."""

    hour_ans: deque[float]
    hour_abn: deque[float]
    day_ans: deque[tuple[int, int]]
    day_abn: deque[tuple[int, int]]
    total_ans: int = 0
    total_abn: int = 0
    d30_ans: int = 0
    d30_abn: int = 0

    @classmethod
    def new(cls) -> RateWindows:
        return cls(deque(), deque(), deque(), deque())

    @staticmethod
    def _bump(q: deque[tuple[int, int]], now: float) -> None:
        d = int(now // 86400)
        if q and q[-1][0] == d:
            q[-1] = (d, q[-1][1] + 1)
        else:
            q.append((d, 1))

    def answered(self, now: float) -> None:
        self.hour_ans.append(now)
        self._bump(self.day_ans, now)
        self.total_ans += 1
        self.d30_ans += 1

    def abandoned(self, now: float) -> None:
        self.hour_abn.append(now)
        self._bump(self.day_abn, now)
        self.total_abn += 1
        self.d30_abn += 1

    def hour(self, now: float) -> tuple[int, int]:
        """(answered, abandoned) over the last 3600 s."""
        cut = now - 3600.0
        a, b = self.hour_ans, self.hour_abn
        while a and a[0] < cut:
            a.popleft()
        while b and b[0] < cut:
            b.popleft()
        return len(a), len(b)

    def days30(self, now: float) -> tuple[int, int]:
        d = int(now // 86400) - 30
        while self.day_ans and self.day_ans[0][0] <= d:
            self.d30_ans -= self.day_ans.popleft()[1]
        while self.day_abn and self.day_abn[0][0] <= d:
            self.d30_abn -= self.day_abn.popleft()[1]
        return self.d30_ans, self.d30_abn


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
