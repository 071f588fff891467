"""The simulated world around the real core.

A heap of timed happenings with a virtual clock: the world feeds the
``DialerCore`` the events the daemon would (AMI and store answers), and
carries out the core's commands the way Asterisk and the store would:

- ``PlaceCall``: the customer's fate is drawn (answer after a time to answer,
  busy, congestion, failure, no answer at the ring timeout) and scheduled as
  ``CallAnswered`` + ``OriginateResult(success)`` or ``OriginateResult``
  with the AMI reason (5 busy, 3 no answer, 8 congestion, 0 failed). A trunk
  with all channels in use answers congestion at once.
- the dialplan fail-safe: 2 s after an answer with no Redirect, the message
  plays (``SafeHarborPlayed``), then the customer is hung up
  (``CallHungUp``) when it ends.
- ``Redirect`` -> ``CallConnected`` after the redirect latency; the
  customer hangs up after the drawn talk time.
- ``LoadLeads`` -> ``LeadsLoaded`` from an in-memory lead store (due retries
  first, then fresh numbers); ``RecordOutcome`` updates it.
- agents log in (``AgentJoined``), take breaks (``AgentLeft`` once their
  call and wrap are done, ``AgentJoined`` after the break).
- ``Tick`` every ``tick_s``, as the daemon's ticker.

Answering machines: the daemon runs Asterisk's AMD when a campaign turns it
on (``amd``: the dialplan reports ``AmdResult``), but the simulator does not
model AMD: a machine is an answered call the core treats as answered, as it
does when AMD is off or lets a machine through. It is connected to an agent
who hangs up after ``machine_s``; that agent time is not counted as talk time.

Random numbers come from separate streams (customers, talk, agents) and each
dial draws the same number of variates, so two policies see the same
customer behind the k-th dial (common random numbers).

Blended scenarios (``inbound``): the callers, their queues and the blended
baselines (``vicidial-blended``, ``reserve``) are ``dialerd.sim.inbound``'s;
they draw from streams of their own, and a scenario without ``inbound``
runs exactly as before.
"""

from __future__ import annotations

import bisect
import heapq
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dialerd.campaign.model import Campaign
from dialerd.core import commands as cmd
from dialerd.core import events as ev
from dialerd.core.engine import DialerCore
from dialerd.core.models import Lead, LeadStatus, Outcome
from dialerd.pacing.policies import Policy
from dialerd.sim.inbound import InboundWorld, dial_mode_of, policy_factory_of
from dialerd.sim.scenario import Scenario

#: sim epoch: a Monday 08:00 UTC, so day buckets behave like a real shift
EPOCH = 86400.0 * 19675 + 8 * 3600
CAMPAIGN = "sim"

# happening kinds
_CORE, _ANSWER_GUARD, _CONNECT, _HANGUP, _BREAK, _TICK, _INBOUND = range(7)


@dataclass(slots=True)
class SimCall:
    attempt_id: str
    lead_id: int
    answered_at: float | None = None
    redirected: bool = False
    safe_harbor: bool = False
    machine: bool = False
    talk_s: float = 0.0
    connected_at: float | None = None
    agent_id: str | None = None
    gone: bool = False


@dataclass(slots=True)
class SimAgent:
    id: str
    state: str = "logged_out"
    since: float = 0.0
    logged_in_s: float = 0.0
    ready_s: float = 0.0
    wrap_s: float = 0.0
    break_due: bool = False
    login_at: float = 0.0


@dataclass(slots=True)
class Result:
    """What one simulated shift measured."""

    scenario: str
    policy: str
    seed: int
    agents: int
    duration_s: float
    talk_share: float
    talk_min_per_agent_hour: float
    physical_limit: float
    line_limited: bool
    abandon_rate: float
    worst_hour_abandon_rate: float
    mean_wait_between_calls_s: float
    dials: int
    answered: int
    abandoned: int
    connected: int
    machine_share_of_agent_time: float
    events: int
    wall_s: float
    outcomes: dict[str, int] = field(default_factory=dict)
    #: blended scenarios: the inbound measurements (``InboundWorld.result``)
    blended: dict[str, Any] | None = None

    @property
    def share_of_limit(self) -> float:
        return self.talk_share / self.physical_limit if self.physical_limit > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "policy": self.policy,
            "seed": self.seed,
            "agents": self.agents,
            "duration_s": self.duration_s,
            "talk_share": round(self.talk_share, 5),
            "talk_min_per_agent_hour": round(self.talk_min_per_agent_hour, 3),
            "physical_limit": round(self.physical_limit, 5),
            "line_limited": self.line_limited,
            "share_of_limit": round(self.share_of_limit, 5),
            "abandon_rate": round(self.abandon_rate, 5),
            "worst_hour_abandon_rate": round(self.worst_hour_abandon_rate, 5),
            "mean_wait_between_calls_s": round(self.mean_wait_between_calls_s, 3),
            "dials": self.dials,
            "answered": self.answered,
            "abandoned": self.abandoned,
            "connected": self.connected,
            "outcomes": dict(sorted(self.outcomes.items())),
            "events": self.events,
            "wall_s": round(self.wall_s, 3),
        } | ({"blended": self.blended} if self.blended is not None else {})


def worst_hour_rate(answers: list[tuple[float, bool]], start: float, end: float) -> float:
    """Max over rolling 60-minute windows inside [start, end] of abandoned /
    live-answered (the whole run when it is shorter than an hour)."""
    if not answers:
        return 0.0
    answers = sorted(answers)
    if end - start <= 3600.0:
        return sum(1 for _, a in answers if a) / len(answers)
    times = [t for t, _ in answers]
    cum_ab = [0]
    for _, a in answers:
        cum_ab.append(cum_ab[-1] + (1 if a else 0))
    # candidate window ends: each abandon, and just after a non-abandon leaves
    ends = [t for t, a in answers if a] + [t + 3600.0 + 1e-6 for t, a in answers if not a]
    ends.append(end)
    worst = 0.0
    for e in ends:
        e = min(max(e, start + 3600.0), end)
        hi = bisect.bisect_right(times, e)
        lo = bisect.bisect_right(times, e - 3600.0)
        n = hi - lo
        if n > 0:
            worst = max(worst, (cum_ab[hi] - cum_ab[lo]) / n)
    return worst


class World:
    def __init__(
        self,
        scenario: Scenario,
        policy: str,
        seed: int | None = None,
        progress: Callable[[float], None] | None = None,
        policy_factory: Callable[[Campaign], Policy] | None = None,
    ) -> None:
        """``policy_factory``: run the policy it builds instead of the one the
        campaign's ``dial_mode`` selects (research: fixed-threshold sweeps and
        reference policies that are not modes, see bench/pacing_frontier.py);
        ``policy`` still names the result."""
        self.sc = scenario
        if policy_factory is None:
            policy_factory = policy_factory_of(policy)
        self.policy_factory = policy_factory
        self.policy = policy
        self.seed = scenario.seed if seed is None else seed
        self.progress = progress
        sc = scenario
        n_agents = sc.agents.count
        self.agent_ids = [str(10000 + i) for i in range(n_agents)]
        max_lines = sc.lines if sc.lines is not None else max(10, 20 * max(n_agents, 1))
        camp: dict[str, Any] = {
            "name": CAMPAIGN,
            "trunk": "Local/{number}@sim-customers",
            "caller_id": {"name": "Sim", "number": "+442071234567"},
            "agents": self.agent_ids,
            "safe_harbor_sound": "custom/safe-harbor",
            "dial_mode": policy,
            "max_lines": max_lines,
            "ring_timeout_s": sc.ring_timeout_s,
            "wrap_up_s": sc.wrap_s,
            "retry": {
                "no_answer": {"delay_s": 1800, "max_attempts": 5},
                "busy": {"delay_s": 600, "max_attempts": 5},
            },
        }
        camp.update(sc.campaign)
        # the policy asked for is the one run (and the one the result names),
        # whatever dial_mode the scenario's campaign block carries
        camp["dial_mode"] = dial_mode_of(policy)
        self.campaign = Campaign.model_validate(camp)
        self.core = DialerCore(run_id="sim")
        base = self.seed * 7919
        self.rng_cust = random.Random(base + 1)
        self.rng_talk = random.Random(base + 2)
        self.rng_agent = random.Random(base + 3)
        c = sc.customers
        self.tta = c.time_to_answer.sampler(self.rng_cust)
        self.busy_after = c.busy_after.sampler(self.rng_cust)
        self.fail_after = c.fail_after.sampler(self.rng_cust)
        self.talk = sc.talk.sampler(self.rng_talk)
        self.machine_s = c.machine_s.sampler(self.rng_talk)
        self.heap: list[tuple[float, int, int, Any]] = []
        self.seq = 0
        self.now = EPOCH
        self.end = EPOCH + sc.duration_s
        self.calls: dict[str, SimCall] = {}
        self.agents = {a: SimAgent(a) for a in self.agent_ids}
        self.trunk_in_use = 0
        # lead store
        self.next_lead = 1
        self.retry_heap: list[tuple[float, int, int]] = []  # (due, id, attempts)
        self.lead_attempts: dict[int, int] = {}
        # measurements
        self.live_answers: list[tuple[float, bool]] = []
        self.talk_total = 0.0
        self.machine_total = 0.0
        self.connected = 0
        self.events = 0
        self.outcomes: dict[str, int] = {}
        #: numbers of leads that are not the world's own (inbound callbacks)
        self.lead_phone: dict[int, str] = {}
        self.agent_talk_out: dict[str, float] = {}
        self.inbound = (
            InboundWorld(self, sc.inbound, self.seed, epoch=EPOCH, campaign=CAMPAIGN,
                         kind=_INBOUND, core_kind=_CORE)
            if sc.inbound is not None
            else None
        )  # fmt: skip

    # ------------------------------------------------------------ schedule
    def at(self, t: float, kind: int, payload: Any) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (t, self.seq, kind, payload))

    def run(self) -> Result:
        import time as _time

        t0 = _time.perf_counter()
        sc = self.sc
        if self.inbound is not None:
            self.inbound.before_campaign()
        self.do(ev.CampaignLoaded(self.now, self.campaign))
        if self.policy_factory is not None:
            self.core.campaigns[CAMPAIGN].policy = self.policy_factory(self.campaign)
        if self.inbound is not None:
            self.inbound.start()
        self.do(ev.AmiUp(self.now))
        for aid in self.agent_ids:
            t = EPOCH + self.rng_agent.uniform(0, sc.agents.login_spread_s)
            self.at(t, _CORE, ("join", aid))
            for _ in range(sc.agents.breaks):
                bt = EPOCH + self.rng_agent.uniform(0.1, 0.95) * sc.duration_s
                self.at(bt, _BREAK, aid)
        self.at(EPOCH + sc.tick_s, _TICK, None)
        heap = self.heap
        end = self.end
        next_report = EPOCH
        step = max(sc.duration_s / 100.0, 1.0)
        while heap:
            t, _, kind, payload = heapq.heappop(heap)
            if t > end:
                break
            self.now = t
            if kind == _TICK:
                self.do(ev.Tick(t))
                self.at(t + sc.tick_s, _TICK, None)
                if self.progress is not None and t >= next_report:
                    next_report = t + step
                    self.progress((t - EPOCH) / sc.duration_s)
            elif kind == _CORE:
                self._core_happening(payload)
            elif kind == _ANSWER_GUARD:
                self._fail_safe(payload)
            elif kind == _CONNECT:
                self._connect(payload)
            elif kind == _HANGUP:
                self._customer_gone(payload)
            elif kind == _BREAK:
                self._break_due(payload)
            elif kind == _INBOUND:
                assert self.inbound is not None
                self.inbound.happen(payload)
        self.now = end
        return self._result(_time.perf_counter() - t0)

    # ------------------------------------------------------------- the core
    def do(self, e: ev.Event) -> None:
        self.events += 1
        out = self.core.handle(e)
        for c in out:
            self._command(c)

    def _command(self, c: cmd.Command) -> None:
        now = self.now
        if isinstance(c, cmd.PlaceCall):
            self._place(c)
        elif isinstance(c, cmd.AgentStateChanged):
            self._agent_state(c.agent_id, c.state, c.at)
        elif isinstance(c, cmd.Redirect):
            if self.inbound is not None and self.inbound.owns(c.attempt_id):
                self.inbound.command(c)
                return
            call = self.calls.get(c.attempt_id)
            if call is None:
                return
            if call.safe_harbor or call.gone:
                self.at(now + 0.005, _CORE, ("redirect_failed", c.attempt_id))
                return
            call.redirected = True
            call.agent_id = c.agent_id
            self.at(now + self.sc.redirect_latency_s, _CONNECT, c.attempt_id)
        elif isinstance(c, cmd.RecordOutcome):
            self._record(c)
        elif isinstance(c, cmd.LoadLeads):
            if c.campaign == CAMPAIGN:
                self.at(now + 0.002, _CORE, ("leads", c.limit))
        elif isinstance(c, cmd.Hangup):
            call = self.calls.get(c.attempt_id)
            if call is not None and not call.gone:
                call.gone = True
                self.at(now + 0.01, _CORE, ("hungup", c.attempt_id))
        elif isinstance(c, cmd.ScreenPop) and c.kind == "offer":
            # preview: the agent reads the lead, then presses '*#'
            self.at(now + self.sc.agents.preview_think_s, _CORE, ("accept", c.agent_id))
        elif isinstance(c, cmd.ReleaseLeads):
            for lid in c.lead_ids:
                heapq.heappush(self.retry_heap, (now, lid, self.lead_attempts.get(lid, 0)))
        elif self.inbound is not None and isinstance(
            c, cmd.InboundFallback | cmd.MakeCallback | cmd.RecordInbound
        ):
            self.inbound.command(c)

    def _core_happening(self, p: tuple[Any, ...]) -> None:
        kind = p[0]
        now = self.now
        if kind == "answered":
            call = self.calls.get(p[1])
            if call is None:
                return
            call.answered_at = now
            self.do(ev.CallAnswered(now, p[1], f"Local/{p[1]};2"))
            self.do(ev.OriginateResult(now + 0.005, p[1], True, 4))
        elif kind == "unanswered":
            self.trunk_in_use -= 1
            self.calls.pop(p[1], None)
            self.do(ev.OriginateResult(now, p[1], False, p[2]))
        elif kind == "join":
            aid = p[1]
            a = self.agents[aid]
            a.login_at = now
            self.do(ev.AgentJoined(now, aid, f"Local/{aid}@agents;2", f"ua-{aid}-{now:.3f}"))
        elif kind == "leads":
            self.do(ev.LeadsLoaded(now, CAMPAIGN, self._take_leads(p[1]), exhausted=False))
        elif kind == "accept":
            if p[1] in self.core.agents:
                self.do(ev.AgentKey(now, p[1], "ready"))
        elif kind == "redirect_failed":
            self.do(ev.RedirectFailed(now, p[1], "channel in safe harbor"))
        elif kind == "hungup":
            call = self.calls.pop(p[1], None)
            if call is not None:
                self.trunk_in_use -= 1
                self._account_talk(call, now)
            self.do(ev.CallHungUp(now, p[1], 16))

    # ---------------------------------------------------------- customers
    def _place(self, c: cmd.PlaceCall) -> None:
        now = self.now
        sc = self.sc
        cu = sc.customers
        # the same draws for every dial, whatever its fate (common random numbers)
        u = self.rng_cust.random()
        u_m = self.rng_cust.random()
        tta = self.tta()
        t_busy = self.busy_after()
        t_fail = self.fail_after()
        talk = self.talk()
        mach = self.machine_s()
        call = SimCall(c.attempt_id, c.lead_id)
        self.calls[c.attempt_id] = call
        if sc.lines is not None and self.trunk_in_use >= sc.lines:
            self.trunk_in_use += 1
            self.at(now + 0.02, _CORE, ("unanswered", c.attempt_id, 8))
            return
        self.trunk_in_use += 1
        rate = cu.rate_at(now - EPOCH)
        if u < rate and tta < sc.ring_timeout_s:
            call.machine = u_m < cu.machine_share
            call.talk_s = mach if call.machine else talk
            self.at(now + tta, _CORE, ("answered", c.attempt_id))
            self.at(now + tta + 2.0, _ANSWER_GUARD, c.attempt_id)
            return
        u -= rate
        if u < cu.busy_share:
            self.at(now + t_busy, _CORE, ("unanswered", c.attempt_id, 5))
        elif u < cu.busy_share + cu.congestion_share:
            self.at(now + t_fail, _CORE, ("unanswered", c.attempt_id, 8))
        elif u < cu.busy_share + cu.congestion_share + cu.failed_share:
            self.at(now + t_fail, _CORE, ("unanswered", c.attempt_id, 0))
        else:
            self.at(now + c.ring_timeout_s, _CORE, ("unanswered", c.attempt_id, 3))

    def _fail_safe(self, attempt_id: str) -> None:
        """The dialplan: 2 s after the answer with no Redirect, play the
        safe-harbor message, then hang up."""
        call = self.calls.get(attempt_id)
        if call is None or call.redirected or call.gone:
            return
        call.safe_harbor = True
        self.do(ev.SafeHarborPlayed(self.now, attempt_id))
        call.gone = True
        self.at(self.now + self.sc.safe_harbor_s, _CORE, ("hungup", attempt_id))

    def _connect(self, attempt_id: str) -> None:
        call = self.calls.get(attempt_id)
        if call is None or call.gone or call.agent_id is None:
            return
        call.connected_at = self.now
        self.connected += 1
        self.do(ev.CallConnected(self.now, attempt_id, call.agent_id))
        self.at(self.now + call.talk_s, _HANGUP, attempt_id)

    def _customer_gone(self, attempt_id: str) -> None:
        call = self.calls.get(attempt_id)
        if call is None or call.gone:
            return
        call.gone = True
        self.calls.pop(attempt_id, None)
        self.trunk_in_use -= 1
        self._account_talk(call, self.now)
        self.do(ev.CallHungUp(self.now, attempt_id, 16))

    def _account_talk(self, call: SimCall, now: float) -> None:
        if call.connected_at is not None:
            d = min(now, self.end) - call.connected_at
            if call.machine:
                self.machine_total += d
            else:
                self.talk_total += d
                if call.agent_id is not None:
                    aid = call.agent_id
                    self.agent_talk_out[aid] = self.agent_talk_out.get(aid, 0.0) + d
            call.connected_at = None

    # -------------------------------------------------------------- leads
    def _take_leads(self, limit: int) -> tuple[Lead, ...]:
        out: list[Lead] = []
        now = self.now
        rh = self.retry_heap
        while rh and len(out) < limit and rh[0][0] <= now:
            _, lid, att = heapq.heappop(rh)
            phone = self.lead_phone.get(lid) or _phone(lid)
            out.append(Lead(id=lid, campaign=CAMPAIGN, phone=phone, attempts=att))
        while len(out) < limit:
            lid = self.next_lead
            self.next_lead += 1
            out.append(Lead(id=lid, campaign=CAMPAIGN, phone=_phone(lid)))
        return tuple(out)

    def _record(self, c: cmd.RecordOutcome) -> None:
        o = c.outcome
        self.outcomes[o.value] = self.outcomes.get(o.value, 0) + 1
        if o.live_answer:
            t = c.answered_at if c.answered_at is not None else c.ended_at
            self.live_answers.append((t, o.abandon))
        up = c.lead
        self.lead_attempts[c.lead_id] = up.attempts
        if up.status is LeadStatus.RETRY and up.next_due_at is not None:
            heapq.heappush(self.retry_heap, (up.next_due_at, c.lead_id, up.attempts))

    # ------------------------------------------------------------- agents
    def _agent_state(self, aid: str, state: str, at: float) -> None:
        a = self.agents.get(aid)
        if a is None:
            return
        self._close_state(a, at)
        a.state = state
        a.since = at
        if a.break_due and state in ("ready", "wrap"):
            self._leave(a)

    def _close_state(self, a: SimAgent, at: float) -> None:
        at = min(at, self.end)
        d = at - a.since
        if d <= 0 or a.state == "logged_out":
            return
        a.logged_in_s += d
        if a.state == "ready":
            a.ready_s += d
        elif a.state == "wrap":
            a.wrap_s += d
        a.since = at

    def _break_due(self, aid: str) -> None:
        a = self.agents[aid]
        if a.state == "logged_out":
            return
        a.break_due = True
        if a.state in ("ready", "wrap"):
            self._leave(a)

    def _leave(self, a: SimAgent) -> None:
        a.break_due = False
        self.do(ev.AgentLeft(self.now, a.id))
        self.at(self.now + self.sc.agents.break_s, _CORE, ("join", a.id))

    # ------------------------------------------------------------- result
    def _result(self, wall: float) -> Result:
        end = self.end
        for call in self.calls.values():
            self._account_talk(call, end)
        logged = ready = 0.0
        for a in self.agents.values():
            self._close_state(a, end)
            logged += a.logged_in_s
            ready += a.ready_s
        sc = self.sc
        st = self.core.campaigns[CAMPAIGN].stats
        limit, limited = sc.physical_limit()
        talk = self.talk_total
        blended = None
        if self.inbound is not None:
            blended = self.inbound.result(self.agents, self.agent_talk_out)
            blended["outbound_talk_s"] = round(self.talk_total, 1)
            talk += self.inbound.talk_total
        talk_share = talk / logged if logged > 0 else 0.0
        hours = logged / 3600.0
        live = len(self.live_answers)
        abandoned = sum(1 for _, a in self.live_answers if a)
        return Result(
            scenario=sc.name,
            policy=self.policy,
            seed=self.seed,
            agents=sc.agents.count,
            duration_s=sc.duration_s,
            talk_share=talk_share,
            talk_min_per_agent_hour=(talk / 60.0) / hours if hours > 0 else 0.0,
            physical_limit=limit,
            line_limited=limited,
            abandon_rate=abandoned / live if live else 0.0,
            worst_hour_abandon_rate=worst_hour_rate(self.live_answers, EPOCH, end),
            mean_wait_between_calls_s=ready / self.connected if self.connected else math.inf,
            dials=st.dials,
            answered=live,
            abandoned=abandoned,
            connected=self.connected,
            machine_share_of_agent_time=self.machine_total / logged if logged > 0 else 0.0,
            events=self.events,
            wall_s=wall,
            outcomes=self.outcomes,
            blended=blended,
        )


def _phone(lead_id: int) -> str:
    return f"+4420{lead_id % 100000000:08d}"


def simulate(
    scenario: Scenario,
    policy: str,
    seed: int | None = None,
    progress: Callable[[float], None] | None = None,
    policy_factory: Callable[[Campaign], Policy] | None = None,
) -> Result:
    """Run one shift of ``scenario`` under ``policy``."""
    return World(scenario, policy, seed, progress, policy_factory).run()


# keep the import used for typing of outcomes in callers
__all__ = ["EPOCH", "Outcome", "Result", "World", "simulate", "worst_hour_rate"]
