"""Agents, calls and campaign runs, and the moves each may make, as data.

Why this module exists: an agent's status and a call's state used to be
assigned in a dozen places, each paired by hand with the per-campaign
counters a pacing decision reads (``talking``, ``wrap``, ``paused_agents``,
``dialing``, ``live``, the ``waiting`` queue). One missed pairing skews
pacing silently, hours later. So, in the manner of h11's ``_state.py``:

- the legal moves are tables (:data:`AGENT_TRANSITIONS`,
  :data:`CALL_TRANSITIONS`), each move named by what causes it;
- the counters are moved by the few functions below and nowhere else
  (the attributes are read-only properties elsewhere); a move the table does
  not list raises :class:`IllegalTransition`: it is a bug in the core, and
  a loud one is cheaper than a wrong dial level.

The counters are kept rather than recounted because a pacing decision runs
on every event and must not scan agents or calls. What they count:

- ``talking`` / ``wrap`` / ``paused_agents``: agents attached to the run
  (``agent.campaign`` is its name) in that status;
- ``dialing``: the run's calls in DIALING; ``live``: all its calls in the
  call table; ``waiting``: its WAITING calls, oldest answer first.

Everything else about an agent or a call (times, the tracker, commands) is
the business of the modules that drive them; this one knows no events and
emits no commands.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from dialerd.campaign.model import Campaign
from dialerd.campaign.queues import Queue
from dialerd.core.models import AgentStatus, CallState, InboundState, Lead
from dialerd.pacing.inbound import ArrivalRate
from dialerd.pacing.policies import Policy
from dialerd.pacing.tracker import PacingTracker
from dialerd.rules.abandon import AbandonAccounting


class IllegalTransition(RuntimeError):
    """A status or state change the tables do not allow: a bug in the core."""


_A = AgentStatus
_C = CallState

#: status -> {next status: what moves it there}
AGENT_TRANSITIONS: Final[dict[AgentStatus, dict[AgentStatus, str]]] = {
    _A.READY: {
        _A.READY: "ready again (joined, attached, offer given back)",
        _A.PREVIEW: "offered a lead (preview mode)",
        _A.RESERVED: "picked for an answered call, or a manual dial",
        _A.PAUSED: "paused",
        _A.TALKING: "found in a room with an adopted call (resync)",
    },
    _A.PREVIEW: {
        _A.READY: "offer skipped, given back, or its accept refused",
        _A.RESERVED: "offer accepted: dialed for this agent",
    },
    _A.RESERVED: {
        _A.RESERVED: "their own (preview, manual) call answered: redirected",
        _A.TALKING: "the customer joined the room",
        _A.READY: "the call ended or its redirect failed before the join",
        _A.PAUSED: "the same, with a pause pending",
    },
    _A.TALKING: {
        _A.WRAP: "the call ended: wrap-up",
        _A.READY: "the call ended, no wrap-up",
        _A.PAUSED: "the call ended, no wrap-up, a pause pending",
    },
    _A.WRAP: {
        _A.READY: "wrap-up over (time, ready key, disposition)",
        _A.PAUSED: "wrap-up over, a pause pending",
        _A.RESERVED: "manual dial from wrap-up",
        _A.TALKING: "found in a room with an adopted call (resync)",
    },
    _A.PAUSED: {
        _A.READY: "unpaused",
        _A.RESERVED: "manual dial from a pause (back to it after the call)",
        _A.TALKING: "found in a room with an adopted call (resync)",
    },
}

#: state -> {next state: what moves it there}; None is "not in the call
#: table" (before it is placed or adopted, and once it has ended)
CALL_TRANSITIONS: Final[dict[CallState | None, dict[CallState | None, str]]] = {
    None: {
        _C.DIALING: "placed, or adopted while ringing",
        _C.CONNECTED: "adopted in an agent's room",
        _C.ABANDONING: "adopted answered and not in a room (the fail-safe has it)",
    },
    _C.DIALING: {
        _C.CONNECTING: "answered, an agent picked: redirect sent",
        _C.WAITING: "answered, no agent free",
        None: "ended unanswered (or answered unseen)",
    },
    _C.WAITING: {
        _C.CONNECTING: "an agent freed inside the connect deadline",
        _C.ABANDONING: "deadline passed, or the safe-harbor message started",
        None: "the customer hung up",
    },
    _C.CONNECTING: {
        _C.CONNECTED: "the customer joined the agent's room",
        _C.ABANDONING: "redirect failed, or the agent left",
        None: "the customer hung up",
    },
    _C.CONNECTED: {None: "the conversation ended"},
    _C.ABANDONING: {None: "the safe-harbor message ended"},
}


_I = InboundState

#: an inbound caller's state -> {next: what moves it there}; None is "not in
#: the inbound table" (before the arrival, and once recorded)
INBOUND_TRANSITIONS: Final[dict[InboundState | None, dict[InboundState | None, str]]] = {
    None: {_I.WAITING: "announced by the dialplan"},
    _I.WAITING: {
        _I.CONNECTING: "an agent picked: redirect sent",
        _I.FALLBACK: "past max_wait_s, or no agent of the queue logged in",
        None: "the caller hung up while waiting",
    },
    _I.CONNECTING: {
        _I.CONNECTED: "the caller joined the agent's room",
        _I.WAITING: "the redirect failed or the agent left: first in line again",
        None: "the caller hung up on the way",
    },
    _I.CONNECTED: {None: "the conversation ended"},
    _I.FALLBACK: {None: "the fallback (offer or message) ended"},
}


@dataclass(slots=True)
class Agent:
    id: str
    status: AgentStatus
    since: float
    channel: str = ""
    uniqueid: str = ""
    campaign: str | None = None
    call: str | None = None
    wrap_until: float = 0.0
    calls: int = 0
    talk_s: float = 0.0
    #: of ``calls`` and ``talk_s``, the inbound callers' part (the rest is
    #: outbound); ``wrap_s``: wrap-ups ended; all since ``logged_in_at``
    #: (an agent who logs out is forgotten), for the occupancy
    inbound_calls: int = 0
    inbound_talk_s: float = 0.0
    wrap_s: float = 0.0
    logged_in_at: float = 0.0
    #: paused as soon as the current call and wrap-up end
    pause_pending: bool = False
    #: the last call the agent talked on (attempt id, lead, campaign), for
    #: the disposition keys pressed in wrap-up
    last_call: tuple[str, Lead, str] | None = None
    #: the last inbound caller the agent talked to (call id, queue, caller's
    #: number): what a disposition key in wrap-up applies to, in place of
    #: ``last_call``
    last_inbound: tuple[str, str, str] | None = None
    #: a disposition pressed while still talking: applied when the call ends
    pending_dispo: tuple[str, int | None] | None = None
    #: pacing bookkeeping: since when the agent is busy with a call (reserved
    #: or talking) and which campaign's tracker counts it; same for wrap
    busy_since: float = 0.0
    busy_in: str | None = None
    wrap_in: str | None = None
    #: preview mode: the lead on the agent's screen, not dialed yet
    offer: Lead | None = None
    offer_at: float = 0.0
    #: why the agent paused (a reason name), for the state they publish
    pause_reason: str = ""


@dataclass(slots=True)
class Call:
    attempt_id: str
    campaign: str
    lead: Lead
    state: CallState
    started_at: float
    channel: str = ""
    answered_at: float | None = None
    connected_at: float | None = None
    agent_id: str | None = None
    originate_done: bool = False
    originate_ok: bool = False
    reason: int | None = None
    fail_at: float | None = None
    hung_up: bool = False
    cause: int | None = None
    safe_harbor: bool = False
    #: AMD said machine and the dialplan does not connect it
    machine: bool = False
    amd: str = ""


@dataclass(slots=True)
class CampaignStats:
    dials: int = 0
    answered: int = 0
    connected: int = 0
    abandoned: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)

    @property
    def abandon_rate(self) -> float:
        return self.abandoned / self.answered if self.answered else 0.0


@dataclass(slots=True)
class CampaignRun:
    cfg: Campaign
    policy: Policy
    hopper: deque[Lead] = field(default_factory=deque)
    hopper_ids: set[int] = field(default_factory=set)
    loading: bool = False
    #: when the pending ``LoadLeads`` was asked for (its watchdog's start)
    loading_since: float = 0.0
    exhausted_at: float | None = None
    #: ready agents, insertion order = longest idle first
    ready: dict[str, None] = field(default_factory=dict)
    agents: set[str] = field(default_factory=set)
    #: answered calls waiting for an agent, oldest first
    waiting: deque[str] = field(default_factory=deque)
    removed: bool = False
    #: a supervisor paused it: no new dials, live calls go on
    paused: bool = False
    #: a supervisor's cap on lines per logged-in agent (None: no cap)
    max_level: float | None = None
    stats: CampaignStats = field(default_factory=CampaignStats)
    tracker: PacingTracker | None = None
    #: FTC 30-day / campaign, Ofcom 24 h, hour: fed with every outcome
    abandons: AbandonAccounting = field(default_factory=AbandonAccounting)
    # the counters: written by this module's functions only (see above)
    _talking: int = 0
    _wrap: int = 0
    _paused_agents: int = 0
    _dialing: int = 0
    _live: int = 0

    def __post_init__(self) -> None:
        if self.tracker is None:
            c = self.cfg
            self.tracker = PacingTracker(c.ring_timeout_s, c.wrap_up_s, c.connect_deadline_s)

    @property
    def trk(self) -> PacingTracker:
        assert self.tracker is not None
        return self.tracker

    @property
    def active(self) -> bool:
        return self.cfg.enabled and not self.removed

    @property
    def talking(self) -> int:
        return self._talking

    @property
    def wrap(self) -> int:
        return self._wrap

    @property
    def paused_agents(self) -> int:
        """Attached agents with status PAUSED."""
        return self._paused_agents

    @property
    def dialing(self) -> int:
        return self._dialing

    @property
    def live(self) -> int:
        return self._live


# ------------------------------------------------------------------ agents
def _count_agent(run: CampaignRun, status: AgentStatus, d: int) -> None:
    if status is _A.TALKING:
        run._talking += d
    elif status is _A.WRAP:
        run._wrap += d
    elif status is _A.PAUSED:
        run._paused_agents += d


def set_agent_status(agent: Agent, new: AgentStatus, run: CampaignRun | None) -> None:
    """Move ``agent`` to ``new``; ``run`` is the run it is attached to (None
    when it is in no campaign). Leaving READY takes it out of the ready pool;
    entering READY does not put it in (the caller decides: a waiting call
    may take the agent first)."""
    old = agent.status
    if new not in AGENT_TRANSITIONS[old]:
        raise IllegalTransition(f"agent {agent.id}: {old.value} -> {new.value}")
    if run is not None:
        if agent.campaign != run.cfg.name or agent.id not in run.agents:
            raise IllegalTransition(f"agent {agent.id} is not attached to {run.cfg.name}")
        _count_agent(run, old, -1)
        _count_agent(run, new, 1)
        if old is _A.READY and new is not _A.READY:
            run.ready.pop(agent.id, None)
    agent.status = new


def attach(agent: Agent, run: CampaignRun) -> None:
    """The agent now works for ``run``: counted there in its status."""
    agent.campaign = run.cfg.name
    run.agents.add(agent.id)
    _count_agent(run, agent.status, 1)


def detach(agent: Agent, run: CampaignRun) -> None:
    """The agent no longer works for ``run`` (its status is kept)."""
    run.agents.discard(agent.id)
    run.ready.pop(agent.id, None)
    _count_agent(run, agent.status, -1)
    agent.campaign = None


# ------------------------------------------------------------------- calls
def _check_call(call: Call, old: CallState | None, new: CallState | None) -> None:
    if new not in CALL_TRANSITIONS[old]:
        names = ("ended" if s is None else s.value for s in (old, new))
        raise IllegalTransition(f"call {call.attempt_id}: {' -> '.join(names)}")


def _count_call(run: CampaignRun, call: Call, state: CallState, d: int) -> None:
    if state is _C.DIALING:
        run._dialing += d
    elif state is _C.WAITING:
        if d > 0:
            run.waiting.append(call.attempt_id)
        else:
            run.waiting.remove(call.attempt_id)  # the head, but for a hang-up


def add_call(calls: dict[str, Call], run: CampaignRun, call: Call) -> None:
    """A call enters the table (placed, or adopted) in its current state."""
    _check_call(call, None, call.state)
    assert call.campaign == run.cfg.name and call.attempt_id not in calls
    calls[call.attempt_id] = call
    run._live += 1
    _count_call(run, call, call.state, 1)


def set_call_state(run: CampaignRun, call: Call, new: CallState) -> None:
    """Move ``call`` (of ``run``) to ``new``."""
    old = call.state
    _check_call(call, old, new)
    _count_call(run, call, old, -1)
    _count_call(run, call, new, 1)
    call.state = new


def remove_call(calls: dict[str, Call], run: CampaignRun, call: Call) -> None:
    """The call ended: out of the table (its ``state`` stays what it was)."""
    _check_call(call, call.state, None)
    del calls[call.attempt_id]
    run._live -= 1
    _count_call(run, call, call.state, -1)


def carry_calls(old: CampaignRun, new: CampaignRun) -> None:
    """A removed campaign is loaded again: its calls still live are counted
    by the new run (their agents were detached with the old one)."""
    new._live, new._dialing, new.waiting = old._live, old._dialing, old.waiting


# ----------------------------------------------------------------- inbound
@dataclass(slots=True)
class InboundCall:
    """A caller to a queue, from their arrival to their one record."""

    call_id: str
    queue: str
    channel: str
    caller: str
    did: str
    arrived_at: float
    state: InboundState = InboundState.WAITING
    agent_id: str | None = None
    connected_at: float | None = None
    #: ``max_wait`` or ``no_agents``: the fallback was handed to the dialplan
    fallback: str | None = None
    callback_campaign: str | None = None
    #: Redirects into a room that Asterisk refused
    failures: int = 0


def local_day(now: float) -> int:
    """The host's local date of ``now`` (epoch seconds) as an ordinal: the
    day a queue's "today" figures belong to. Local time is the host's
    (``TZ``), as for ``dialerd report``; no clock is read."""
    return datetime.fromtimestamp(now).toordinal()


@dataclass(slots=True)
class QueueStats:
    """A queue's figures: since the daemon started (``QueueRun.stats``), or
    for one local day (``QueueRun.today``, ``day`` its ordinal). The store
    keeps the history."""

    #: the local day counted (:func:`local_day`); 0: since the start
    day: int = 0
    offered: int = 0
    answered: int = 0
    #: answered within the service level's ``within_s``
    answered_in_sl: int = 0
    #: hung up while waiting, after the service level's ``within_s``
    abandoned: int = 0
    #: hung up while waiting, inside ``within_s`` (not held against the level)
    abandoned_short: int = 0
    fallbacks: int = 0
    callbacks: int = 0
    #: sum of the waits of answered callers (ASA = this / answered)
    answer_wait_s: float = 0.0
    #: the longest wait of a caller who was answered, hung up while waiting
    #: or sent to a fallback (callers still waiting are the view's to add)
    longest_wait_s: float = 0.0

    @property
    def service_level(self) -> float | None:
        """Answered in time over callers who waited long enough to count
        (answered, abandoned past ``within_s``, sent to a fallback); None
        before the first."""
        n = self.answered + self.abandoned + self.fallbacks
        return self.answered_in_sl / n if n else None

    @property
    def asa_s(self) -> float | None:
        """Average speed of answer (seconds); None before the first answer."""
        return self.answer_wait_s / self.answered if self.answered else None


@dataclass(slots=True)
class QueueRun:
    cfg: Queue
    #: the agents who answer it (``served_by``), kept in step with campaigns
    agents: frozenset[str] = frozenset()
    #: the campaigns those agents work for (re-paced when the queue moves)
    campaigns: frozenset[str] = frozenset()
    #: callers waiting for an agent, oldest first
    waiting: deque[str] = field(default_factory=deque)
    arrivals: ArrivalRate = field(default_factory=ArrivalRate)
    stats: QueueStats = field(default_factory=QueueStats)
    #: the same figures for the current local day (reset at local midnight)
    today: QueueStats = field(default_factory=QueueStats)
    #: gone from the configuration, or disabled: no new callers
    removed: bool = False

    @property
    def name(self) -> str:
        return self.cfg.name

    def tally(self, now: float) -> tuple[QueueStats, QueueStats]:
        """The figures a change at ``now`` is counted in: since the start,
        and today's (begun afresh on the first change of a new local day)."""
        day = local_day(now)
        if self.today.day != day:
            self.today = QueueStats(day=day)
        return self.stats, self.today


def _check_inbound(icall: InboundCall, old: InboundState | None, new: InboundState | None) -> None:
    if new not in INBOUND_TRANSITIONS[old]:
        names = ("ended" if s is None else s.value for s in (old, new))
        raise IllegalTransition(f"caller {icall.call_id}: {' -> '.join(names)}")


def add_inbound(table: dict[str, InboundCall], q: QueueRun, icall: InboundCall) -> None:
    """A caller arrives: in the table, last in the queue's line."""
    _check_inbound(icall, None, icall.state)
    assert icall.call_id not in table and icall.queue == q.name
    table[icall.call_id] = icall
    q.waiting.append(icall.call_id)


def set_inbound_state(q: QueueRun | None, icall: InboundCall, new: InboundState) -> None:
    """Move ``icall`` to ``new``; into WAITING it goes first in line (it
    was already picked once), out of WAITING it leaves the line."""
    old = icall.state
    _check_inbound(icall, old, new)
    if q is not None:
        if old is _I.WAITING:
            q.waiting.remove(icall.call_id)
        if new is _I.WAITING:
            q.waiting.appendleft(icall.call_id)
    icall.state = new


def remove_inbound(table: dict[str, InboundCall], q: QueueRun | None, icall: InboundCall) -> None:
    """The caller's record is written: out of the table (and the line)."""
    _check_inbound(icall, icall.state, None)
    del table[icall.call_id]
    if q is not None and icall.state is _I.WAITING:
        q.waiting.remove(icall.call_id)
