"""The estimators the pacing tracker is built of: aging bins of busy agents
and ringing calls, the ring-outcome and talk-time models with forgetting,
and the abandon windows. Each is plain arithmetic on the numbers it is
given; none reads a clock. Kept apart from ``tracker`` so that each model
can be read (and tested) on its own.
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
