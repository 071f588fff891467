"""dialerd's predictive pacing engine.

Decision (on every event the core sees, not on a timer):

1. For K horizon points ``x_k`` (equal-probability quantiles of a new call's
   time to answer) compute the number of agents free for a call answered at
   ``now + x_k``: ready agents, plus agents in wrap whose wrap ends by
   ``x_k + deadline``, plus each busy agent's probability of having ended the
   call and its wrap by then *given how long it has talked already* (talk time
   as a piecewise-constant hazard, not memoryless), minus the calls already
   waiting and each ringing call's probability of being answered by
   ``x_k`` *given how long it has rung*. Mean and variance are sums over
   age bins (bin counts times precomputed tables), plus the uncertainty of
   the answer-probability estimate.
2. The n-th new call abandons if, when it is answered, fewer agents are free
   than calls answered before it. Its risk ``r(n)`` is the average over the
   horizon points of a normal tail with continuity correction. Place the
   largest n with ``r(n) <= theta``.
3. ``theta`` (the marginal risk accepted) is the controller's output: an
   integral loop on log theta moves it up a little on every live answer and
   down ``1/aim`` times as much on every abandon, so it settles where abandons
   are ``aim x target`` of answers; guards shrink it as the abandon headroom
   of the last hour and of the 30-day window runs out.

Blended (inbound queues answered by the same agents): the callers waiting
and the arrivals expected over each horizon point are subtracted from the
free agents, and the progressive floor is lowered by the callers expected
within a new call's mean time to answer (a caller may take the ready agent
a call was placed for). An optional service-level guard and a hold rule
are built and off (measured in docs/pacing.md, "Blended").

Cold start: progressive until the estimators have seen enough (answers,
ring outcomes, completed talks). Then, while the 30-day window does not
allow a single abandon (target x live answers < 1, all shift long for a
campaign held to a near-zero target), only calls that cannot abandon.
"""

from __future__ import annotations

import bisect
import math
from operator import mul
from typing import TYPE_CHECKING

from dialerd.pacing.policies import PacingSnapshot
from dialerd.pacing.tracker import HORIZON_POINTS, PacingTracker, Tables

if TYPE_CHECKING:
    from dialerd.campaign.model import Campaign

_SQRT1_2 = 1.0 / math.sqrt(2.0)


class Predictive:
    name = "predictive"

    def __init__(
        self,
        aim: float = 0.85,
        max_lines_per_agent: float = 10.0,
        warmup_answers: int = 10,
        warmup_talks: int = 5,
        gain: float = 0.004,
        theta0: float = 0.03,
        future_weight: float = 0.0,
        hour_guard: bool = True,
        days30_guard: bool = True,
    ) -> None:
        """``days30_guard`` off and ``gain`` 0 give a fixed threshold
        ``theta0`` (no loop, no 30-day brake): the engine's model alone, for
        measuring its frontier (bench/pacing_frontier.py); never for a real
        campaign, which is why no campaign field reaches it."""
        self.aim = aim
        self.max_lines_per_agent = max_lines_per_agent
        self.warmup_answers = warmup_answers
        self.warmup_talks = warmup_talks
        self.gain = gain
        self.log_theta = math.log(theta0)
        self.hour_guard = hour_guard
        self.days30_guard = days30_guard
        self.future_weight = future_weight
        self.talk_unc = 0.01
        #: the hour guard brakes against ``hour_limit`` x the target, from
        #: ``hour_scale`` x sqrt(allowance) abandons of headroom down (a
        #: budget in abandons: at 100 agents it starts at about 2.5%, at 20
        #: agents at about 2%)
        self.hour_scale = 1.0
        self.hour_limit = 0.95
        #: ... less this many abandons: the calls in flight when it closes
        self.hour_reserve = 2.0
        #: ... and always from this many agents on (the rolling-hour promise)
        self.hour_guard_agents = 20
        self.var_floor = 0.05
        #: blended: the inbound arrival rate is counted this many times over
        #: (more than 1 keeps agents back for inbound callers beyond the mean)
        self.inbound_weight = 1.0
        #: blended: no outbound call while a caller has waited longer than
        #: this share of the service level's ``within_s`` (None: off)
        self.hold_wait_share: float | None = None
        #: blended: the service-level guard, an integral loop on agents kept
        #: back for inbound (``in_reserve``): up ``sl_gain x aim`` on every
        #: caller the level counts against, down ``sl_gain x (1 - aim)`` on
        #: every caller answered in time, ``aim`` = target + ``sl_margin``;
        #: it settles where the level is ``aim`` and sits at 0 while the
        #: level is above it
        self.sl_guard = False
        self.sl_margin = 0.05
        self.sl_gain = 0.5
        self.in_reserve = 0.0
        self._sl_seen = (0, 0)
        #: blended: the floor of "never fewer than progressive" less the
        #: arrivals expected before a new call answers (a ready agent is not
        #: pure loss when a caller may take them, and a call placed for them
        #: abandons if one does)
        self.floor_arrivals = True
        #: ... counted as ``ceil(expected - slack)`` agents (0.5: rounded)
        self.floor_slack = 0.5
        #: seconds taken off the earliest answer and added to the latest one
        #: seen when counting calls that cannot abandon
        self.certain_margin_s = 0.5
        #: above this many active agents the loop's step per answer shrinks
        #: as 1/sqrt(agents): as many steps an hour, each smaller
        self.gain_ref_agents = 20.0
        self._seen_ans = 0
        #: per horizon point: expected agents freed, its variance, expected
        #: answers of ringing calls, its variance; kept up to date from the
        #: bin counts that changed since the last decision
        self._sums: list[list[float]] = [[0.0] * HORIZON_POINTS for _ in range(4)]
        self._sums_serial = -1
        self._talk_seen: list[int] = []
        self._ring_seen: list[int] = []
        self._talk_ver = -1
        self._ring_ver = -1
        self._last_state: tuple[int | float, ...] | None = None
        self._seen_abn = 0
        #: diagnostics: the last decision's threshold and marginal risk
        self.theta = theta0
        self.last_risk = 0.0

    @classmethod
    def from_campaign(cls, c: Campaign | None) -> Predictive:
        if c is None:
            return cls()
        p = c.pacing
        # the campaign model's defaults are the engine's (one source of truth,
        # checked by a unit test), so every field passes as it is
        return cls(
            aim=p.aim,
            max_lines_per_agent=p.max_lines_per_agent,
            warmup_answers=p.warmup_answers,
            warmup_talks=p.warmup_talks,
            gain=p.gain,
            future_weight=p.future_weight,
            hour_guard=p.hour_guard,
        )

    # ----------------------------------------------------------- controller
    def _threshold(self, s: PacingSnapshot) -> float:
        t = s.tracker
        assert t is not None
        target = s.abandon_target
        setpoint = target * self.aim
        r = t.rates
        # guards: the abandon headroom left in the windows the law counts,
        # as budgets in abandons (not rates on a small denominator)
        a30, b30 = r.days30(s.now)
        g = _guard(target * a30 - b30, max(2.0, 0.1 * target * a30)) if self.days30_guard else 1.0
        if self.hour_guard:
            ah, bh = r.hour(s.now)
            # meaningful only with enough calls an hour (with 3 allowed
            # abandons an hour, one more is noise, not a trend) or agents
            agents = s.agents_logged_in - s.agents_paused
            # (before the hour allows one abandon the 30-day guard, on the
            # same few calls at the start of a campaign, holds it)
            if target * ah >= 4.0 or (agents >= self.hour_guard_agents and target * ah >= 1.0):
                # brake only when the hour's count nears its limit; the
                # calls already ringing when the brake comes on can still
                # abandon, hence the margin below the target
                lim = self.hour_limit * target * ah - self.hour_reserve
                g *= _guard(lim - bh, max(2.0, self.hour_scale * math.sqrt(max(lim, 1.0))))
        d_ans = r.total_ans - self._seen_ans
        d_abn = r.total_abn - self._seen_abn
        if d_ans or d_abn:
            self._seen_ans, self._seen_abn = r.total_ans, r.total_abn
            # the more answers an hour, the smaller the step per answer: the
            # loop's memory stays about as long in time, and theta as steady
            n_act = max(s.agents_logged_in - s.agents_paused, 1)
            gain = self.gain * math.sqrt(self.gain_ref_agents / max(n_act, self.gain_ref_agents))
            step = gain * (d_ans - d_abn / setpoint)
            # no wind-up: while a guard brakes, the loop does not push up
            if step < 0 or g >= 0.999:
                self.log_theta += step
            self.log_theta = min(max(self.log_theta, math.log(1e-3)), math.log(0.6))
        return math.exp(self.log_theta) * g

    # -------------------------------------------------------------- blended
    def _inbound(self, s: PacingSnapshot, t: PacingTracker | None) -> tuple[bool, int]:
        """(hold: place nothing now, agents to take off the progressive
        floor) for the inbound queues; updates the service-level guard."""
        if s.inbound_within_s <= 0.0:
            return False, 0
        if self.sl_guard:
            met, counted = s.inbound_sl_met, s.inbound_sl_counted
            d_met, d_cnt = met - self._sl_seen[0], counted - self._sl_seen[1]
            if d_cnt > 0 or d_met > 0:
                self._sl_seen = (met, counted)
                aim = min(s.inbound_sl_target + self.sl_margin, 0.995)
                bad = max(d_cnt - d_met, 0)
                self.in_reserve += self.sl_gain * (bad * aim - d_met * (1.0 - aim))
                top = float(max(s.agents_logged_in - s.agents_paused, 0))
                self.in_reserve = min(max(self.in_reserve, 0.0), top)
        if self.hold_wait_share is not None and (
            s.inbound_oldest_wait_s > self.hold_wait_share * s.inbound_within_s
        ):
            return True, 0
        off = math.ceil(self.in_reserve - 1e-9)
        if self.floor_arrivals and t is not None and s.inbound_rate > 0:
            horizon = t.ring_est.mean_answer_time() + t.connect_deadline_s
            off += max(math.ceil(s.inbound_rate * horizon - self.floor_slack), 0)
        return False, off

    # ------------------------------------------------------------- decision
    def calls_to_place(self, s: PacingSnapshot) -> int:
        t = s.tracker
        hold, floor_off = self._inbound(s, t)
        if hold:
            return 0
        progressive = s.agents_ready - s.calls_dialing - s.calls_waiting - s.inbound_now
        # paused agents take no calls: they are not agents the pacing sees
        agents = s.agents_logged_in - s.agents_paused
        if agents <= 0:
            return 0
        per_agent = int(self.max_lines_per_agent * agents) - s.lines_in_use
        cap = min(s.max_lines - s.lines_in_use, per_agent)
        if cap <= 0:
            return 0
        if (
            t is None
            or t.ring_est.n_ans < self.warmup_answers
            or t.talk_est.n_obs < self.warmup_talks
        ):
            return max(0, min(progressive - floor_off, cap))
        progressive -= floor_off
        rates = t.rates
        a30, _b30 = rates.days30(s.now)
        if s.abandon_target * a30 < 1.0:
            # the 30-day window does not allow one abandon yet: only calls
            # that cannot abandon (the normal tail rates some calls 1e-6 that
            # abandon one time in a thousand). A campaign held to a tiny
            # target stays here; a 3% one leaves after 34 answers (once the
            # allowance is there, the 30-day guard brakes as it runs out)
            return max(0, min(self.certain_calls(s, t), cap))
        state = (
            t.tables_serial, t.talk.version, t.ring.version, len(t.wrap_ends),
            s.agents_ready, s.calls_waiting, s.calls_dialing, s.lines_in_use,
            s.inbound_waiting, self.in_reserve,
            rates.total_ans, rates.total_abn, int(s.now * 2.0),
        )  # fmt: skip
        if state == self._last_state:
            # nothing moved since a decision that placed nothing (within half
            # a second): the answer is the same
            return 0
        theta = self._threshold(s)
        self.theta = theta
        tab = t.tables()
        K = HORIZON_POINTS
        now = s.now
        d = max(t.connect_deadline_s - 0.1, 0.0)
        # blended: the callers waiting take the next agents freed, and the
        # arrivals expected before a call placed now is answered (plus its
        # connect window) take more; Poisson, so the variance is the mean
        base = s.agents_ready - s.calls_waiting - s.inbound_waiting - self.in_reserve
        in_rate = s.inbound_rate * self.inbound_weight
        wraps = t.wrap_ends
        p = tab.p_answer
        rel = tab.p_var / (p * p) if p > 0 else 0.0
        self._update_sums(t, tab)
        sums = self._sums
        lam = t.dial_rate_at(now) * self.future_weight
        mus: list[float] = []
        vs: list[float] = []
        dems: list[float] = []
        for k in range(K):
            free_t, var_t, dem, var_d = sums[0][k], sums[1][k], sums[2][k], sums[3][k]
            fut = lam * p * tab.fut_g[k]
            dem += fut
            var_d += fut
            wrap_free = bisect.bisect_right(wraps, now + tab.xs[k] + d)
            inb = in_rate * (tab.xs[k] + d)
            mus.append(base + wrap_free + free_t - dem - inb)
            vs.append(var_t + var_d + inb + self.talk_unc * free_t * free_t)
            dems.append(dem)
        a = [p * (k + 0.5) / K for k in range(K)]

        var_floor = self.var_floor

        def risk(n: int) -> float:
            m = n - 1
            tot = 0.0
            for k in range(K):
                ak = a[k]
                dn = dems[k] + m * ak
                mu = mus[k] - m * ak
                v = vs[k] + m * ak * (1.0 - ak) + rel * dn * dn + var_floor
                z = (0.5 - mu) / math.sqrt(v)
                tot += 0.5 * math.erfc(-z * _SQRT1_2)
            return tot / K

        r1 = risk(1)
        self.last_risk = r1
        if r1 > theta and progressive <= 0:
            self._last_state = state
            return 0
        self._last_state = None
        if r1 > theta:
            # never fewer than progressive would place: a ready agent with no
            # call on its way is pure loss, and progressive cannot abandon
            return max(0, min(progressive, cap))
        lo, hi = 1, 2
        while hi <= cap and risk(hi) <= theta:
            lo, hi = hi, hi * 2
        hi = min(hi, cap + 1)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if risk(mid) <= theta:
                lo = mid
            else:
                hi = mid
        return max(0, min(max(lo, progressive), cap))

    def certain_calls(self, s: PacingSnapshot, t: PacingTracker) -> int:
        """Calls that find an agent whenever they answer: one per agent free
        now or certain to be (its wrap over) before the earliest answer ever
        seen, less every call that could claim one first (waiting, or
        ringing and still within the latest answer ever seen). At least
        progressive: calls that have rung past every answer seen are not
        counted as claims."""
        re_ = t.ring_est
        earliest = re_.min_answer_s - self.certain_margin_s + t.connect_deadline_s - 0.1
        wraps = bisect.bisect_right(t.wrap_ends, s.now + max(earliest, 0.0))
        # ring bins count from the whole start second: a call in bin e has
        # rung at least e - 1 s
        past = int(re_.max_answer_s + self.certain_margin_s) + 2
        dead = sum(t.ring.cnt[past:])
        return s.agents_ready + wraps - s.calls_waiting - s.inbound_now - (s.calls_dialing - dead)

    def _update_sums(self, t: PacingTracker, tab: Tables) -> None:
        K = HORIZON_POINTS
        sums = self._sums
        if (
            self._sums_serial != t.tables_serial
            or len(self._talk_seen) != len(t.talk.cnt)
            or (len(self._ring_seen) != len(t.ring.cnt))
        ):
            tc, rc = t.talk.cnt, t.ring.cnt
            for k in range(K):
                sums[0][k] = sum(map(mul, tc, tab.talk_p[k]))
                sums[1][k] = sum(map(mul, tc, tab.talk_v[k]))
                sums[2][k] = sum(map(mul, rc, tab.ring_q[k]))
                sums[3][k] = sum(map(mul, rc, tab.ring_v[k]))
            self._talk_seen, self._ring_seen = list(tc), list(rc)
            self._sums_serial = t.tables_serial
            self._talk_ver, self._ring_ver = t.talk.version, t.ring.version
            return
        if self._talk_ver != t.talk.version:
            self._talk_ver = t.talk.version
            _apply_changes(t.talk.cnt, self._talk_seen, tab.talk_p, tab.talk_v, sums[0], sums[1])
        if self._ring_ver != t.ring.version:
            self._ring_ver = t.ring.version
            _apply_changes(t.ring.cnt, self._ring_seen, tab.ring_q, tab.ring_v, sums[2], sums[3])


def _apply_changes(
    cnt: list[int],
    seen: list[int],
    tm: list[list[float]],
    tv: list[list[float]],
    sm: list[float],
    sv: list[float],
) -> None:
    """Add the bins whose count moved since ``seen`` into the sums."""
    if cnt == seen:
        return
    for i, (c, o) in enumerate(zip(cnt, seen, strict=True)):
        if c != o:
            dlt = c - o
            seen[i] = c
            for k in range(len(sm)):
                sm[k] += dlt * tm[k][i]
                sv[k] += dlt * tv[k][i]


def _guard(headroom: float, scale: float) -> float:
    """1 with plenty of headroom, falling to ~0 as it runs out."""
    if headroom >= scale:
        return 1.0
    if headroom <= 0:
        return 1e-3
    f = headroom / scale
    return max(f * f, 1e-3)
