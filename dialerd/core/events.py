"""Events in: everything the core learns, each stamped with ``now``.

The core never reads a clock; the shell (daemon or simulator) puts the time
on every event, which is what lets the simulator run a shift in seconds.
Times are epoch seconds as floats.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

from dialerd.core.models import Lead

if TYPE_CHECKING:
    from dialerd.campaign.model import Campaign
    from dialerd.campaign.queues import Queue


@dataclass(frozen=True, slots=True)
class Tick:
    """Time passes: wrap-up timers, connect deadlines, re-pacing."""

    now: float


@dataclass(frozen=True, slots=True)
class CampaignLoaded:
    """A campaign was added or changed (settings apply to future decisions)."""

    now: float
    campaign: Campaign


@dataclass(frozen=True, slots=True)
class CampaignRemoved:
    """Stop dialing it; live calls finish normally."""

    now: float
    name: str


@dataclass(frozen=True, slots=True)
class LeadsLoaded:
    """Answer to ``LoadLeads``. ``exhausted``: nothing more is due right now."""

    now: float
    campaign: str
    leads: tuple[Lead, ...]
    exhausted: bool


@dataclass(frozen=True, slots=True)
class AgentJoined:
    """An agent's channel entered their room ``agent-<id>`` (AMI ConfbridgeJoin)."""

    now: float
    agent_id: str
    channel: str
    uniqueid: str


@dataclass(frozen=True, slots=True)
class AgentLeft:
    """The agent's channel left their room (logout or hang-up)."""

    now: float
    agent_id: str


@dataclass(frozen=True, slots=True)
class CallAnswered:
    """The dialplan's ``DialerAnswered`` UserEvent: a person (or AMD-passed
    call) is on the line in the outbound context, the 2 s clock runs."""

    now: float
    attempt_id: str
    channel: str


@dataclass(frozen=True, slots=True)
class CallConnected:
    """The customer's channel joined an agent room (ConfbridgeJoin)."""

    now: float
    attempt_id: str
    agent_id: str


@dataclass(frozen=True, slots=True)
class SafeHarborPlayed:
    """The dialplan's fail-safe fired: no agent in 2 s, message playing."""

    now: float
    attempt_id: str


@dataclass(frozen=True, slots=True)
class CallHungUp:
    """AMI ``Hangup`` of the attempt's channel (its Uniqueid is the attempt id)."""

    now: float
    attempt_id: str
    cause: int


@dataclass(frozen=True, slots=True)
class OriginateResult:
    """The final answer to an Originate (AMI ``OriginateResponse``), or the
    shell's verdict that none will come (``reason`` None: action refused or
    timed out). ``lost``: the AMI connection dropped with the action
    outstanding; the call may be live, so the core keeps it until its
    Hangup or a ``Resync`` settles it."""

    now: float
    attempt_id: str
    success: bool
    reason: int | None
    detail: str = ""
    lost: bool = False


@dataclass(frozen=True, slots=True)
class CallNotPlaced:
    """The shell did not place the call: its write-ahead row could not be
    written, so no Originate was sent. ``give_back``: the store failed (the
    lead returns to the hopper, dialed once the store writes again); else
    the store refused the lead (already dialing or finished elsewhere) and
    it is let go. No outcome is recorded: there was no attempt."""

    now: float
    attempt_id: str
    reason: str
    give_back: bool = True


@dataclass(frozen=True, slots=True)
class StoreDown:
    """The store cannot record (a write failed and is being retried, or a
    read the dialing needs fails): fail closed, no new call of any
    campaign, the agents' own calls included, until ``StoreUp``."""

    now: float
    reason: str


@dataclass(frozen=True, slots=True)
class StoreUp:
    """Every write the store owed is written again: dialing may resume."""

    now: float


@dataclass(frozen=True, slots=True)
class RedirectFailed:
    """Asterisk refused the Redirect (the channel is usually already gone)."""

    now: float
    attempt_id: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class AmiUp:
    """AMI logged in: dialing may proceed."""

    now: float


@dataclass(frozen=True, slots=True)
class AmiDown:
    """AMI lost: no new dials until it is back."""

    now: float
    reason: str


@dataclass(frozen=True, slots=True)
class Drain:
    """Shutdown requested: place no new calls, let live ones finish."""

    now: float


@dataclass(frozen=True, slots=True)
class CampaignPause:
    """A supervisor pauses (or resumes) a campaign: no new dials while
    paused; live calls go on and agents keep taking them."""

    now: float
    name: str
    paused: bool
    reason: str = ""


@dataclass(frozen=True, slots=True)
class SetDialLevel:
    """A supervisor caps the campaign's lines per logged-in agent (None
    lifts the cap; the campaign file's limits always apply too)."""

    now: float
    name: str
    max_level: float | None


@dataclass(frozen=True, slots=True)
class AgentPause:
    """Pause or unpause an agent (a supervisor, or the agent by DTMF). An
    agent busy with a call is paused when that call and its wrap-up end."""

    now: float
    agent_id: str
    paused: bool
    reason: str = ""


@dataclass(frozen=True, slots=True)
class AgentLogout:
    """Force an agent out of their room (the shell hangs up their channel)."""

    now: float
    agent_id: str


@dataclass(frozen=True, slots=True)
class LiveCall:
    """A customer channel Asterisk reports live, found by its Uniqueid (the
    attempt id): ``where`` is ``ringing`` (not answered yet), ``outbound``
    (answered, in the 2 s window or the safe-harbor message) or ``room``
    (in ``agent_id``'s room)."""

    attempt_id: str
    channel: str
    where: str
    agent_id: str | None = None


@dataclass(frozen=True, slots=True)
class OpenAttempt:
    """An attempt the store has open that this core does not know (a run
    that crashed or was killed left it): adopted if live, else closed."""

    attempt_id: str
    campaign: str
    lead: Lead
    started_at: float


@dataclass(frozen=True, slots=True)
class Resync:
    """What Asterisk says is live, taken at ``now`` (AMI login, reconnect).

    Handled atomically so no pacing decision sees half of it: calls of a
    previous run are adopted (their end is recorded once, their lead is never
    re-dialed meanwhile), calls that ended unseen are closed, agents are
    matched to their rooms (an agent talking to an adopted customer is busy).
    """

    now: float
    calls: tuple[LiveCall, ...]
    agents: tuple[AgentJoined, ...]
    open_attempts: tuple[OpenAttempt, ...]


@dataclass(frozen=True, slots=True)
class AmdResult:
    """The dialplan's ``DialerAmd`` UserEvent: AMD()'s verdict on an answered
    call (``status`` MACHINE, HUMAN, NOTSURE, HANGUP) and what the dialplan
    does with a machine (``action`` hangup, message, connect)."""

    now: float
    attempt_id: str
    status: str
    cause: str = ""
    action: str = ""


@dataclass(frozen=True, slots=True)
class AgentKey:
    """An agent's key in their room (UserEvent ``DialerKey`` from the
    ``[dialer-ack]`` dialplan): ``key`` is a disposition digit, ``ready``,
    ``pause`` (``data``: the reason's name, translated from its code by the
    shell), ``skip`` or ``logout``. ``channel`` is where the answer goes:
    the dialplan waits for it and plays its prompt (empty: nobody waits)."""

    now: float
    agent_id: str
    key: str
    data: str = ""
    channel: str = ""


@dataclass(frozen=True, slots=True)
class ManualDial:
    """An agent keyed a number (``***`` + number + ``#``); the shell found
    or created its lead in the agent's campaign. The core still screens it
    (DNC, calling hours, 72-hour lock) and reserves the agent for it."""

    now: float
    agent_id: str
    lead: Lead
    channel: str = ""


@dataclass(frozen=True, slots=True)
class DncUpdated:
    """The shell's DNC table changed (start, import, a disposition):
    ``replace`` swaps the whole list; entries are (campaign or None, E.164, source)."""

    now: float
    added: tuple[tuple[str | None, str, str], ...] = ()
    removed: tuple[tuple[str | None, str], ...] = ()
    replace: bool = False


@dataclass(frozen=True, slots=True)
class HistoryLoaded:
    """Outcomes of the last 30 days from the store, oldest first, at start:
    (campaign, E.164, outcome, ended_at). Seeds abandon accounting and the
    72-hour lock so a restart forgets neither."""

    now: float
    outcomes: tuple[tuple[str, str, str, float], ...]


# ------------------------------------------------------------------ inbound
# An inbound caller's channel is named by its Asterisk Uniqueid (``call_id``),
# as an outbound call is by its attempt id: its join into an agent's room,
# its hang-up and a failed Redirect come as ``CallConnected``, ``CallHungUp``
# and ``RedirectFailed`` with ``attempt_id`` = ``call_id`` (the core looks
# the id up in its inbound table first).


@dataclass(frozen=True, slots=True)
class QueuesLoaded:
    """The inbound queues, all of them (a reload replaces the set). A
    queue that is gone or disabled takes no new caller; its waiting callers
    are served as before."""

    now: float
    queues: tuple[Queue, ...]


@dataclass(frozen=True, slots=True)
class InboundArrived:
    """The dialplan's ``DialerInbound`` UserEvent: a caller to a known DID
    is answered and holding. ``caller`` is the E.164 number, or "" when it
    is withheld or not a valid number (nobody to call back)."""

    now: float
    call_id: str
    queue: str
    channel: str
    caller: str = ""
    did: str = ""


@dataclass(frozen=True, slots=True)
class CallbackRequested:
    """The dialplan's ``DialerCallback`` UserEvent: a caller offered a call
    back pressed 1 (the channel waits for the answer on ``channel``)."""

    now: float
    call_id: str
    channel: str = ""


#: every event the core handles; ``DialerCore.handle`` matches them all
#: (mypy checks it: the match ends in ``assert_never``)
Event: TypeAlias = (
    Tick
    | CampaignLoaded
    | CampaignRemoved
    | LeadsLoaded
    | AgentJoined
    | AgentLeft
    | CallAnswered
    | CallConnected
    | SafeHarborPlayed
    | CallHungUp
    | OriginateResult
    | CallNotPlaced
    | StoreDown
    | StoreUp
    | RedirectFailed
    | AmiUp
    | AmiDown
    | Drain
    | CampaignPause
    | SetDialLevel
    | AgentPause
    | AgentLogout
    | Resync
    | AmdResult
    | AgentKey
    | ManualDial
    | DncUpdated
    | HistoryLoaded
    | QueuesLoaded
    | InboundArrived
    | CallbackRequested
)
