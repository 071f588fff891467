"""The inbound half of a blended simulated world: callers to the queues.

``World`` (``dialerd.sim.world``) owns the clock, the heap and the outbound
customers; when a scenario declares ``inbound`` queues it builds one
:class:`InboundWorld`, which

- feeds the core ``QueuesLoaded`` (real :class:`~dialerd.campaign.queues.Queue`
  models built from the scenario) and ``InboundArrived`` for each caller:
  Poisson arrivals whose rate may change every hour of the shift;
- draws each caller's patience, talk time, callback choice and withheld
  number *at arrival*, from its own random streams (one per queue, seeded
  apart from the outbound streams), so the callers are the same under every
  policy and adding inbound leaves the outbound draws of an outbound-only
  scenario untouched (common random numbers);
- carries out what the core commands for them: ``Redirect`` (the caller
  joins the agent's room after the redirect latency: ``CallConnected``, then
  ``CallHungUp`` after their talk time), ``InboundFallback`` (the offer or
  message plays, the caller may press 1: ``CallbackRequested``; then
  ``CallHungUp``), ``MakeCallback`` (a callback lead for the caller's number
  goes into the world's lead store, due ``callback_due_s`` later);
- a caller still waiting when their patience runs out hangs up (an inbound
  abandon);
- measures from ``RecordInbound`` (one per caller): per queue and per hour of
  arrival, offered, answered, service level, ASA, abandons, fallbacks.

The three blended policies the bench compares (:data:`BLENDED_POLICIES`):
``predictive`` and ``vicidial-blended`` share one campaign whose agents
answer the queue between outbound calls; ``reserve`` keeps, hour by hour,
the agents Erlang C asks for the service level in a second campaign,
paused so it never dials, whose agents alone answer the queue (the rest
dial predictive and take no inbound).
"""

from __future__ import annotations

import heapq
import math
import random
from dataclasses import dataclass, field
from typing import Any, Protocol

from dialerd.campaign.model import Campaign
from dialerd.campaign.queues import Queue
from dialerd.core import commands as cmd
from dialerd.core import events as ev
from dialerd.core.models import InboundOutcome
from dialerd.pacing.inbound import agents_for
from dialerd.pacing.policies import Policy, Vicidial
from dialerd.sim.scenario import Inbound, InboundQueue, Scenario


class Host(Protocol):
    """What the inbound world uses of ``dialerd.sim.world.World`` (a
    protocol, so that the two modules do not import each other)."""

    now: float
    end: float
    sc: Scenario
    policy: str
    agent_ids: list[str]
    campaign: Campaign
    lead_phone: dict[int, str]
    retry_heap: list[tuple[float, int, int]]

    def do(self, e: ev.Event) -> None: ...

    def at(self, t: float, kind: int, payload: Any) -> None: ...


#: the campaign of the reserve agents (paused: it never dials)
RESERVE_CAMPAIGN = "sim-in"
#: callback leads get ids from here, apart from the world's fresh leads
CALLBACK_LEAD_BASE = 1_000_000_000

#: policy name -> the campaign dial_mode it runs on
BLENDED_POLICIES: dict[str, str] = {
    "predictive": "predictive",
    "vicidial-blended": "vicidial",
    "reserve": "predictive",
}


def dial_mode_of(policy: str) -> str:
    """The campaign's ``dial_mode`` for a simulator policy name."""
    return BLENDED_POLICIES.get(policy, policy)


def policy_factory_of(policy: str) -> Any:
    """The policy object a blended baseline needs beyond its dial mode, or
    None: VICIdial's dial level with ``inbound_queue_no_dial``."""
    if policy == "vicidial-blended":

        def make(c: Campaign) -> Policy:
            pc = c.pacing
            return Vicidial(
                max_level=pc.vicidial_max_level, intensity=pc.vicidial_intensity,
                queue_no_dial=True,
            )  # fmt: skip

        return make
    return None


def reserve_plan(sc: Scenario) -> list[tuple[float, int]]:
    """(shift second, agents kept for inbound) at each hour: the fewest
    agents Erlang C says meet the strictest queue's target with every
    queue's arrival rate that hour and the mean handling time (talk +
    wrap), at least 1, at most all agents but one."""
    assert sc.inbound is not None
    n_agents = sc.agents.count
    out: list[tuple[float, int]] = []
    hours = max(1, math.ceil(sc.duration_s / 3600.0))
    for h in range(hours):
        t = h * 3600.0
        rate = 0.0
        handle = 0.0
        within, percent = 3600, 0.0
        for q in sc.inbound.queues:
            r = q.rate_per_min(t) / 60.0
            rate += r
            handle += r * (q.talk.expected() + sc.wrap_s)
            within = min(within, q.service_level.within_s)
            percent = max(percent, q.service_level.percent)
        handle = handle / rate if rate > 0 else 0.0
        n = agents_for(rate, handle, within, percent) if rate > 0 else 0
        n = min(max(n, 1), max(n_agents - 1, 1))
        if not out or out[-1][1] != n:
            out.append((t, n))
    return out


@dataclass(slots=True)
class Caller:
    call_id: str
    queue: int
    arrived_at: float
    patience: float
    talk: float
    accept: bool
    caller: str
    fallback_s: float
    #: waiting, redirecting, connected, fallback, gone
    state: str = "waiting"
    agent_id: str | None = None
    connected_at: float | None = None


@dataclass(slots=True)
class HourStats:
    offered: int = 0
    answered: int = 0
    answered_in_sl: int = 0
    #: hung up waiting, after the target's ``within_s`` (held against the level)
    abandoned: int = 0
    #: hung up waiting, inside ``within_s``
    abandoned_short: int = 0
    fallbacks: int = 0
    callbacks: int = 0
    wait_s: float = 0.0
    abandon_wait_s: float = 0.0

    def add(self, o: HourStats) -> None:
        for f in self.__slots__:
            setattr(self, f, getattr(self, f) + getattr(o, f))

    @property
    def sl_base(self) -> int:
        return self.answered + self.abandoned + self.fallbacks

    @property
    def service_level(self) -> float | None:
        """Answered within the target over answered + abandoned after the
        target + fallbacks (None: no such caller)."""
        n = self.sl_base
        return self.answered_in_sl / n if n else None

    def as_dict(self) -> dict[str, Any]:
        sl = self.service_level
        return {
            "offered": self.offered,
            "answered": self.answered,
            "answered_in_sl": self.answered_in_sl,
            "abandoned": self.abandoned,
            "abandoned_short": self.abandoned_short,
            "fallbacks": self.fallbacks,
            "callbacks": self.callbacks,
            "service_level": None if sl is None else round(sl, 5),
            "asa_s": round(self.wait_s / self.answered, 3) if self.answered else None,
            "mean_abandon_wait_s": round(self.abandon_wait_s / (self.abandoned
                                         + self.abandoned_short), 3)
            if self.abandoned + self.abandoned_short else None,
        }  # fmt: skip


@dataclass(slots=True)
class _QueueSim:
    cfg: InboundQueue
    rng: random.Random
    patience: Any
    talk: Any
    fallback_s: Any
    hours: dict[int, HourStats] = field(default_factory=dict)
    n: int = 0


class InboundWorld:
    def __init__(
        self,
        world: Host,
        inbound: Inbound,
        seed: int,
        *,
        epoch: float,
        campaign: str,
        kind: int,
        core_kind: int,
    ) -> None:
        """``kind``: the world's heap kind for inbound happenings (handed
        back to :meth:`happen`); ``core_kind``: its kind for core events
        (``("redirect_failed", id)``)."""
        self.w = world
        self.epoch = epoch
        self.camp_name = campaign
        self.kind = kind
        self.core_kind = core_kind
        self.cfg = inbound
        self.reserve = world.policy == "reserve"
        base = seed * 7919
        self.queues: list[_QueueSim] = []
        for i, q in enumerate(inbound.queues):
            rng = random.Random(base + 1009 + 17 * i)
            self.queues.append(
                _QueueSim(q, rng, q.patience.sampler(rng), q.talk.sampler(rng),
                          q.fallback_s.sampler(rng))
            )  # fmt: skip
        self.callers: dict[str, Caller] = {}
        self.talk_total = 0.0
        self.agent_talk: dict[str, float] = {}
        self.recorded = 0
        self.callback_leads = 0
        self._next_cb = CALLBACK_LEAD_BASE
        self._plan: list[tuple[float, int]] = reserve_plan(world.sc) if self.reserve else []

    # ------------------------------------------------------------ set-up
    def queue_models(self) -> tuple[Queue, ...]:
        out = []
        for q in self.cfg.queues:
            fb: dict[str, Any]
            if q.after_max_wait == "callback":
                fb = {"action": "callback", "offer_sound": "custom/offer",
                      "booked_sound": "custom/booked", "sound": "custom/bye"}  # fmt: skip
            else:
                fb = {"action": "message", "sound": "custom/bye"}
            out.append(
                Queue.model_validate(
                    {
                        "name": q.name,
                        "dids": q.dids,
                        "campaigns": [RESERVE_CAMPAIGN if self.reserve else self.camp_name],
                        "priority": q.priority,
                        "service_level": q.service_level.model_dump(),
                        "max_wait_s": q.max_wait_s,
                        "callback_campaign": self.camp_name,
                        "after_max_wait": fb,
                        "no_agents": {"action": "message", "sound": "custom/closed"},
                        "hold": {"music": "default"},
                    }
                )
            )
        return tuple(out)

    def _reserve_campaign(self, n: int) -> Campaign:
        camp = self.w.campaign.model_dump(mode="json")
        camp.update(name=RESERVE_CAMPAIGN, agents=self.w.agent_ids[:n], dial_mode="progressive")
        return Campaign.model_validate(camp)

    def before_campaign(self) -> None:
        """The reserve's campaign goes in first: an agent listed by both
        campaigns works for the first (``core.campaigns._reassign_agents``)."""
        if self.reserve:
            now = self.w.now
            self.w.do(ev.CampaignLoaded(now, self._reserve_campaign(self._plan[0][1])))
            self.w.do(ev.CampaignPause(now, RESERVE_CAMPAIGN, True, "inbound reserve"))

    def start(self) -> None:
        epoch = self.epoch
        w = self.w
        w.do(ev.QueuesLoaded(w.now, self.queue_models()))
        for i in range(len(self.queues)):
            self._schedule_arrival(i, w.now)
        for t, n in self._plan[1:]:
            w.at(epoch + t, self.kind, ("reserve", n))

    # --------------------------------------------------------- happenings
    def happen(self, p: tuple[Any, ...]) -> None:
        kind = p[0]
        if kind == "arrive":
            self._arrive(p[1])
        elif kind == "patience":
            self._give_up(p[1])
        elif kind == "connect":
            self._connect(p[1])
        elif kind == "hangup":
            self._hang_up(p[1])
        elif kind == "press1":
            c = self.callers.get(p[1])
            if c is not None and c.state == "fallback":
                self.w.do(ev.CallbackRequested(self.w.now, c.call_id, _channel(c.call_id)))
        elif kind == "reserve":
            now = self.w.now
            self.w.do(ev.CampaignLoaded(now, self._reserve_campaign(p[1])))

    def _rate_at(self, qi: int, t: float) -> float:
        epoch = self.epoch
        return self.queues[qi].cfg.rate_per_min(t - epoch) / 60.0

    def _schedule_arrival(self, qi: int, now: float) -> None:
        """The next arrival of a Poisson stream whose rate is constant
        within each hour of the shift (memoryless: at an hour's end, draw
        again at the new rate)."""
        epoch = self.epoch
        qs = self.queues[qi]
        hourly = qs.cfg.hourly_calls_per_min is not None
        t = now
        end = self.w.end
        while t < end:
            r = self._rate_at(qi, t)
            boundary = epoch + (math.floor((t - epoch) / 3600.0) + 1) * 3600.0 if hourly else end
            if r <= 0:
                t = boundary
                continue
            gap = qs.rng.expovariate(r)
            if t + gap <= boundary:
                self.w.at(t + gap, self.kind, ("arrive", qi))
                return
            t = boundary

    def _arrive(self, qi: int) -> None:
        w = self.w
        now = w.now
        qs = self.queues[qi]
        q = qs.cfg
        # every draw of a caller at arrival, in one order: the same callers
        # whatever the policy does with them
        patience = qs.patience()
        talk = qs.talk()
        u_accept = qs.rng.random()
        u_withheld = qs.rng.random()
        fb_s = qs.fallback_s()
        qs.n += 1
        cid = f"in-{qi}-{qs.n}"
        number = "" if u_withheld < q.withheld_share else f"+4479{qi:02d}{qs.n:07d}"
        c = Caller(cid, qi, now, patience, talk, u_accept < q.callback_accept, number, fb_s)
        self.callers[cid] = c
        self._schedule_arrival(qi, now)
        w.at(now + patience, self.kind, ("patience", cid))
        w.do(ev.InboundArrived(now, cid, q.name, _channel(cid), number, q.dids[0]))

    def _give_up(self, cid: str) -> None:
        c = self.callers.get(cid)
        if c is None or c.state != "waiting":
            return
        c.state = "gone"
        self.w.do(ev.CallHungUp(self.w.now, cid, 16))

    def _connect(self, cid: str) -> None:
        c = self.callers.get(cid)
        if c is None or c.state != "redirecting" or c.agent_id is None:
            return
        c.state = "connected"
        c.connected_at = self.w.now
        self.w.do(ev.CallConnected(self.w.now, cid, c.agent_id))
        self.w.at(self.w.now + c.talk, self.kind, ("hangup", cid))

    def _hang_up(self, cid: str) -> None:
        c = self.callers.get(cid)
        if c is None or c.state == "gone":
            return
        self._account(c, self.w.now)
        c.state = "gone"
        self.w.do(ev.CallHungUp(self.w.now, cid, 16))

    def _account(self, c: Caller, now: float) -> None:
        if c.connected_at is not None and c.agent_id is not None:
            d = min(now, self.w.end) - c.connected_at
            self.talk_total += d
            self.agent_talk[c.agent_id] = self.agent_talk.get(c.agent_id, 0.0) + d
            c.connected_at = None

    # ----------------------------------------------------------- commands
    def owns(self, call_id: str) -> bool:
        return call_id in self.callers

    def command(self, c: cmd.Command) -> None:
        w = self.w
        now = w.now
        if isinstance(c, cmd.Redirect):
            caller = self.callers[c.attempt_id]
            # ("redirecting": the core took the caller back from an agent
            # who left and picked another; the latest agent is joined)
            if caller.state not in ("waiting", "redirecting"):
                w.at(now + 0.005, self.core_kind, ("redirect_failed", c.attempt_id))
                return
            caller.state = "redirecting"
            caller.agent_id = c.agent_id
            w.at(now + w.sc.redirect_latency_s, self.kind, ("connect", c.attempt_id))
        elif isinstance(c, cmd.InboundFallback):
            fb = self.callers.get(c.call_id)
            if fb is None or fb.state == "gone":
                return
            fb.state = "fallback"
            if c.action == "callback" and fb.accept and fb.caller:
                w.at(now + min(4.0, fb.fallback_s / 2.0), self.kind, ("press1", c.call_id))
            w.at(now + fb.fallback_s, self.kind, ("hangup", c.call_id))
        elif isinstance(c, cmd.MakeCallback):
            lid = self._next_cb
            self._next_cb += 1
            self.callback_leads += 1
            w.lead_phone[lid] = c.phone
            due = next(q.callback_due_s for q in self.cfg.queues if q.name == c.queue)
            heapq.heappush(w.retry_heap, (c.at + due, lid, 0))
        elif isinstance(c, cmd.RecordInbound):
            self._record(c)

    def _record(self, r: cmd.RecordInbound) -> None:
        epoch = self.epoch
        self.recorded += 1
        qi = next(i for i, q in enumerate(self.queues) if q.cfg.name == r.queue)
        qs = self.queues[qi]
        h = int((r.arrived_at - epoch) // 3600.0)
        st = qs.hours.setdefault(h, HourStats())
        st.offered += 1
        within = qs.cfg.service_level.within_s
        o = r.outcome
        if o is InboundOutcome.ANSWERED:
            st.answered += 1
            st.wait_s += r.wait_s
            if r.wait_s <= within:
                st.answered_in_sl += 1
        elif o is InboundOutcome.ABANDONED:
            st.abandon_wait_s += r.wait_s
            if r.wait_s > within:
                st.abandoned += 1
            else:
                st.abandoned_short += 1
        else:
            st.fallbacks += 1
            if o is InboundOutcome.CALLBACK:
                st.callbacks += 1
        self.callers.pop(r.call_id, None)

    # ------------------------------------------------------------- result
    def result(self, agents: dict[str, Any], outbound_talk: dict[str, float]) -> dict[str, Any]:
        """The blended measurements (``Result.blended``)."""
        end = self.w.end
        for c in self.callers.values():
            self._account(c, end)
        queues: dict[str, Any] = {}
        total = HourStats()
        worst: float | None = None
        for qs in self.queues:
            tot = HourStats()
            hours = []
            for h in sorted(qs.hours):
                st = qs.hours[h]
                tot.add(st)
                d = st.as_dict()
                d["hour"] = h
                hours.append(d)
                sl = st.service_level
                if sl is not None and (worst is None or sl < worst):
                    worst = sl
            total.add(tot)
            queues[qs.cfg.name] = {
                **tot.as_dict(),
                "target": qs.cfg.service_level.percent / 100.0,
                "within_s": qs.cfg.service_level.within_s,
                "worst_hour_service_level": min(
                    (h["service_level"] for h in hours if h["service_level"] is not None),
                    default=None,
                ),
                "hours": hours,
            }
        per_agent = []
        for aid, a in agents.items():
            logged = a.logged_in_s
            tin = self.agent_talk.get(aid, 0.0)
            tout = outbound_talk.get(aid, 0.0)
            per_agent.append(
                {
                    "agent": aid,
                    "logged_in_s": round(logged, 1),
                    "inbound_talk_s": round(tin, 1),
                    "outbound_talk_s": round(tout, 1),
                    "occupancy": round((logged - a.ready_s) / logged, 4) if logged > 0 else 0.0,
                }
            )
        occ = [p["occupancy"] for p in per_agent if p["logged_in_s"] > 0]
        return {
            **total.as_dict(),
            "worst_hour_service_level": None if worst is None else round(worst, 5),
            "unfinished": len(self.callers),
            "callback_leads": self.callback_leads,
            "inbound_talk_s": round(self.talk_total, 1),
            "occupancy_mean": round(sum(occ) / len(occ), 4) if occ else 0.0,
            "occupancy_min": min(occ) if occ else 0.0,
            "queues": queues,
            "agents": per_agent,
        }


def _channel(cid: str) -> str:
    return f"PJSIP/trunk-{cid}"
