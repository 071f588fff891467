"""What every part of the core shares during one ``handle`` call.

Why one shared context rather than objects that own each other: an event
crosses parts in both directions (a call's end frees its agent, a freed
agent takes the oldest waiting call, a disposition ends a wrap-up), so any
ownership tree would be wrong for half the events. The parts are modules of
plain functions over this context instead, layered so that none imports a
part above it:

    state         entities, legal moves, counters (no events, no commands)
    context       this: the tables, the out list, the campaigns to re-pace
    compliance    the DNC list and abandon history the screening reads
    agents        the agent pool: join/leave, ready, pause, wrap-up, connect
    hopper        lead supply and the last screening before a dial
    dispositions  an agent's verdict on their last call
    calls         the call table: place, answer, connect, end, cause waits
    inbound       inbound callers: arrival, routing, fallback, their record
    preview       offers, accepts, timeouts
    keys          agents' keys and manual dial
    recovery      resync and adoption after an AMI reconnect or a restart
    campaigns     campaign lifecycle, supervisor controls and the pacing step
    timers        what a Tick does, in order
    engine        ``DialerCore.handle``: dispatch only
    testing       the harness the tests (and any new shell) drive it with

Each module imports only modules listed above it.

Fields are plain attributes: the parts write them, the shells only read
them through ``DialerCore``.
"""

from __future__ import annotations

from collections.abc import Callable

from dialerd.core import commands as cmd
from dialerd.core.models import AgentStatus
from dialerd.core.state import (
    Agent,
    Call,
    CampaignRun,
    InboundCall,
    QueueRun,
    set_agent_status,
)
from dialerd.rules.abandon import AbandonLock
from dialerd.rules.dnc import DncList


class CoreContext:
    __slots__ = (
        "agent_by_uniqueid",
        "agent_campaign",
        "agents",
        "ami_up",
        "calls",
        "campaigns",
        "cause_wait",
        "dirty",
        "dnc",
        "draining",
        "inbound",
        "live_leads",
        "lock",
        "new_id",
        "offers",
        "out",
        "queues",
        "queues_of",
        "screen",
        "store_down",
        "verdicts",
        "wraps",
    )

    def __init__(self, new_id: Callable[[], str], screen: bool) -> None:
        #: screen every lead just before its Originate (see ``DialerCore``)
        self.screen = screen
        #: do-not-call lists, kept in step by ``DncUpdated``
        self.dnc = DncList()
        #: numbers abandoned in the last 72 hours (across campaigns)
        self.lock = AbandonLock()
        self.campaigns: dict[str, CampaignRun] = {}
        self.agents: dict[str, Agent] = {}
        self.calls: dict[str, Call] = {}
        #: leads in a live call or on an agent's preview screen
        self.live_leads: set[int] = set()
        #: agent id -> the campaign that lists it first
        self.agent_campaign: dict[str, str] = {}
        #: the agent's channel Uniqueid -> agent id, to tell an agent leaving
        #: their room from a customer leaving it
        self.agent_by_uniqueid: dict[str, str] = {}
        self.ami_up = False
        self.draining = False
        #: why the store cannot record (None: it can); no new dials meanwhile
        self.store_down: str | None = None
        self.new_id = new_id
        #: wrap-up ends (time, agent id), a heap; stale entries are skipped
        self.wraps: list[tuple[float, str]] = []
        #: (deadline, attempt id) of every placed call, a heap: a call still
        #: waiting for its Originate's verdict at its deadline is ended
        self.verdicts: list[tuple[float, str]] = []
        #: failed originates waiting for their hangup cause (insertion = time order)
        self.cause_wait: dict[str, None] = {}
        #: agents looking at a preview offer (insertion order = oldest first)
        self.offers: dict[str, None] = {}
        #: inbound queues by name, and the callers the core holds by call id
        self.queues: dict[str, QueueRun] = {}
        self.inbound: dict[str, InboundCall] = {}
        #: agent id -> the queues they answer, highest priority first
        self.queues_of: dict[str, tuple[str, ...]] = {}
        #: the commands of the event being handled, in order
        self.out: list[cmd.Command] = []
        #: campaigns to re-pace once the event is handled
        self.dirty: set[str] = set()

    def emit(self, c: cmd.Command) -> None:
        self.out.append(c)

    def run_of(self, agent: Agent) -> CampaignRun | None:
        """The run the agent is attached to, if any."""
        return self.campaigns.get(agent.campaign or "")

    def set_status(self, agent: Agent, new: AgentStatus) -> None:
        set_agent_status(agent, new, self.run_of(agent))
