"""Drive a ``DialerCore`` by hand, the way a shell does: the core's test kit.

Shipped with the package (as ``trio.testing`` is) because every shell and
every test of the core needs the same three things, and four hand-made
copies of them had drifted apart:

- a virtual clock (``now``, moved with :meth:`CoreHarness.at`): the core
  never reads one, so a test says when each event happens;
- every command kept, in order (``out``, filtered with :meth:`of`);
- the core's own invariants checked after every event
  (:func:`check_invariants`): the counters a pacing decision reads equal a
  recount, no lead is in two calls, every busy agent has its call. A test
  that only meant to check a key press also checks the bookkeeping.

The helpers (:meth:`join`, :meth:`load`, :meth:`answer`, :meth:`key` ...)
send the events the daemon would; anything else goes through :meth:`do`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from dialerd.campaign.model import Campaign
from dialerd.campaign.queues import Queue
from dialerd.core import commands as cmd
from dialerd.core import events as ev
from dialerd.core.engine import DialerCore
from dialerd.core.models import AgentStatus, CallState, InboundState, Lead

__all__ = [
    "CoreHarness",
    "campaign",
    "check_invariants",
    "leads",
    "of",
    "queue",
]

C = TypeVar("C")

#: the harness's clock starts here unless told otherwise
START = 1000.0


def campaign(name: str = "c1", **over: Any) -> Campaign:
    """A small valid campaign: agents 1001-1003, 10 lines, 5 s wrap-up,
    busy retried after 60 s (twice at most); ``over`` replaces any field."""
    base: dict[str, Any] = {
        "name": name,
        "trunk": "Local/{number}@sim-customers",
        "caller_id": {"name": "Acme", "number": "+442071234567"},
        "agents": ["1001", "1002", "1003"],
        "safe_harbor_sound": "custom/safe",
        "max_lines": 10,
        "wrap_up_s": 5,
        "retry": {"busy": {"delay_s": 60, "max_attempts": 2}},
    }
    base.update(over)
    return Campaign.model_validate(base)


def leads(n: int, start: int = 1, camp: str = "c1") -> tuple[Lead, ...]:
    """``n`` fresh leads with ids from ``start`` and London numbers."""
    return tuple(
        Lead(id=i, campaign=camp, phone=f"+4420712{i:05d}") for i in range(start, start + n)
    )


def of(out: Iterable[object], kind: type[C]) -> list[C]:
    """The commands of ``out`` of one kind, in order."""
    return [c for c in out if isinstance(c, kind)]


def check_invariants(core: DialerCore) -> None:
    """Recount what the core keeps as counters and check its promises;
    an AssertionError names the first that does not hold."""
    agents, calls = core.agents, core.calls
    lead_ids = [c.lead.id for c in calls.values()]
    assert len(lead_ids) == len(set(lead_ids)), "a lead in two live calls"
    assert set(lead_ids) <= core.live_leads, "a live call's lead is not held"
    for name, run in core.campaigns.items():
        mine = [a for a in agents.values() if a.campaign == name]
        assert {a.id for a in mine} == run.agents, f"{name}: attached agents"
        for status, count in (
            (AgentStatus.TALKING, run.talking),
            (AgentStatus.WRAP, run.wrap),
            (AgentStatus.PAUSED, run.paused_agents),
        ):
            want = sum(1 for a in mine if a.status is status)
            assert count == want, f"{name}: {status.value} counter {count}, recount {want}"
        for aid in run.ready:
            a = agents.get(aid)
            assert a is not None and a.campaign == name, f"{name}: {aid} in the pool, not here"
            assert a.status is AgentStatus.READY, f"{name}: {aid} in the pool, {a.status}"
        its = [c for c in calls.values() if c.campaign == name]
        assert run.live == len(its), f"{name}: live {run.live}, recount {len(its)}"
        dialing = sum(1 for c in its if c.state is CallState.DIALING)
        assert run.dialing == dialing, f"{name}: dialing {run.dialing}, recount {dialing}"
        waiting = sorted(c.attempt_id for c in its if c.state is CallState.WAITING)
        assert sorted(run.waiting) == waiting, f"{name}: waiting queue {list(run.waiting)}"
    for a in agents.values():
        busy = a.status in (AgentStatus.RESERVED, AgentStatus.TALKING)
        assert busy == (a.call is not None), f"agent {a.id}: {a.status.value}, call {a.call}"
        assert a.call is None or a.call in calls or a.call in core.inbound, (
            f"agent {a.id}: call {a.call} has ended"
        )
        previewing = a.status is AgentStatus.PREVIEW
        assert previewing == (a.offer is not None), f"agent {a.id}: {a.status.value}, offer"
        assert a.offer is None or a.offer.id in core.live_leads, f"agent {a.id}: offer not held"
    for q in core.queues.values():
        waiting = [
            c.call_id
            for c in core.inbound.values()
            if c.queue == q.name and c.state is InboundState.WAITING
        ]
        assert sorted(q.waiting) == sorted(waiting), f"queue {q.name}: waiting {list(q.waiting)}"
        if q.waiting:
            idle = [a for a in q.agents for r in core.campaigns.values() if a in r.ready]
            assert not idle, f"queue {q.name}: callers wait while {idle} are ready"
    for c in core.inbound.values():
        if c.state in (InboundState.CONNECTING, InboundState.CONNECTED):
            a = agents.get(c.agent_id or "")
            assert a is None or a.call == c.call_id, f"caller {c.call_id}: agent {c.agent_id}"


class CoreHarness:
    """A core with campaigns loaded and (by default) AMI up, a virtual
    clock, and every command kept in ``out``."""

    def __init__(
        self,
        *campaigns: Campaign,
        now: float = START,
        screen: bool = False,
        run_id: str = "t",
        ami_up: bool = True,
        check: bool = True,
    ) -> None:
        self.core = DialerCore(run_id=run_id, screen=screen)
        self.now = now
        self.out: list[cmd.Command] = []
        #: run :func:`check_invariants` after every event
        self.check = check
        for c in campaigns:
            self.do(ev.CampaignLoaded(self.now, c))
        if ami_up:
            self.do(ev.AmiUp(self.now))

    def do(self, e: ev.Event) -> list[cmd.Command]:
        """Hand ``e`` to the core; its commands (also kept in ``out``)."""
        out = self.core.handle(e)
        self.out.extend(out)
        if self.check:
            check_invariants(self.core)
        return out

    def at(self, dt: float) -> float:
        """Move the clock ``dt`` seconds on; the new ``now``."""
        self.now += dt
        return self.now

    def of(self, kind: type[C]) -> list[C]:
        """Every command of one kind so far, in order."""
        return of(self.out, kind)

    # ------------------------------------------------------------- agents
    def agent_event(self, agent_id: str, channel: str = "") -> ev.AgentJoined:
        """The ``AgentJoined`` the shell sends when ``agent_id`` enters their
        room (channel ``Local/<id>@a;2`` unless given, Uniqueid ``u-<id>``)."""
        return ev.AgentJoined(
            self.now, agent_id, channel or f"Local/{agent_id}@a;2", f"u-{agent_id}"
        )

    def join(self, agent_id: str, channel: str = "") -> list[cmd.Command]:
        return self.do(self.agent_event(agent_id, channel))

    def leave(self, agent_id: str) -> list[cmd.Command]:
        return self.do(ev.AgentLeft(self.now, agent_id))

    def status(self, agent_id: str) -> AgentStatus:
        return self.core.agents[agent_id].status

    def key(
        self, agent_id: str, key: str, data: str = "", *, channel: str, dt: float = 0.0
    ) -> cmd.AgentAck:
        """An agent's key from a dialplan that waits on ``channel`` for the
        answer: checks it is answered there exactly once and recorded."""
        out = self.do(ev.AgentKey(self.at(dt), agent_id, key, data, channel))
        acks = of(out, cmd.AgentAck)
        assert len(acks) == 1 and acks[0].channel == channel, acks
        assert of(out, cmd.AgentAction), "every key is recorded"
        return acks[0]

    # -------------------------------------------------------- leads, calls
    def load(
        self, batch: tuple[Lead, ...], *, exhausted: bool = False, camp: str = "c1"
    ) -> list[cmd.Command]:
        """The store's answer to a ``LoadLeads``."""
        return self.do(ev.LeadsLoaded(self.now, camp, batch, exhausted))

    def placed(self) -> list[cmd.PlaceCall]:
        return self.of(cmd.PlaceCall)

    def answer(self, attempt_id: str, channel: str = "") -> list[cmd.Command]:
        """The dialplan's DialerAnswered for the attempt (before any Redirect)."""
        return self.do(ev.CallAnswered(self.now, attempt_id, channel or f"{attempt_id};1"))

    def connect(self, attempt_id: str, agent_id: str) -> list[cmd.Command]:
        """The customer's channel joined ``agent_id``'s room."""
        return self.do(ev.CallConnected(self.now, attempt_id, agent_id))

    def hang_up(self, attempt_id: str, cause: int = 16) -> list[cmd.Command]:
        return self.do(ev.CallHungUp(self.now, attempt_id, cause))

    def tick(self, dt: float = 0.0) -> list[cmd.Command]:
        return self.do(ev.Tick(self.at(dt)))

    # ------------------------------------------------------------ inbound
    def queues(self, *qs: Queue) -> list[cmd.Command]:
        return self.do(ev.QueuesLoaded(self.now, qs))

    def arrive(
        self, call_id: str, queue: str = "q1", caller: str = "+442079460001"
    ) -> list[cmd.Command]:
        """A caller announced by the dialplan (channel ``PJSIP/trunk-<id>``)."""
        return self.do(
            ev.InboundArrived(self.now, call_id, queue, f"PJSIP/trunk-{call_id}", caller,
                              "+442071234567")
        )  # fmt: skip


def queue(name: str = "q1", **over: Any) -> Queue:
    """A small valid queue answered by campaign c1's agents: 80% in 20 s,
    60 s maximum wait, a callback offer after it, a message with no agents."""
    base: dict[str, Any] = {
        "name": name,
        "dids": ["+442071234567"],
        "campaigns": ["c1"],
        "service_level": {"percent": 80, "within_s": 20},
        "max_wait_s": 60,
        "callback_campaign": "c1",
        "after_max_wait": {
            "action": "callback",
            "offer_sound": "custom/offer",
            "sound": "custom/bye",
        },
        "no_agents": {"action": "message", "sound": "custom/closed"},
        "hold": {"music": "default"},
    }
    base.update(over)
    return Queue.model_validate(base)
