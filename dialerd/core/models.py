"""Plain data the core reasons about.

These types cross the boundary between the sans-I/O core and its shells
(daemon, simulator, tests), so they are small frozen dataclasses with no
behaviour that could hide I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Outcome(StrEnum):
    """How one attempt ended. Exactly one per originated call."""

    #: answered and connected to an agent (a live conversation)
    ANSWERED = "answered"
    #: answered, no agent within the connect deadline: safe-harbor message played
    ABANDONED = "abandoned"
    #: answered, the customer hung up inside the 2 s window before an agent was
    #: connected. Counted apart so reports can show it; the abandon rate used for
    #: pacing counts it as an abandon (the conservative reading of the rules).
    CUSTOMER_HANGUP = "customer_hangup"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    CONGESTION = "congestion"
    FAILED = "failed"
    MACHINE = "machine"
    #: the daemon lost track of the call (AMI dropped, crash, action timeout):
    #: never re-dialed at once, the retry rules decide when
    INTERRUPTED = "interrupted"

    @property
    def live_answer(self) -> bool:
        """Answered by a person: the denominator of the abandon rate."""
        return self in (Outcome.ANSWERED, Outcome.ABANDONED, Outcome.CUSTOMER_HANGUP)

    @property
    def abandon(self) -> bool:
        return self in (Outcome.ABANDONED, Outcome.CUSTOMER_HANGUP)


class InboundOutcome(StrEnum):
    """How one inbound call ended. Exactly one per caller the core saw."""

    #: the caller joined an agent's room
    ANSWERED = "answered"
    #: the caller hung up while waiting (or on the way to an agent)
    ABANDONED = "abandoned"
    #: the fallback played and the caller took the callback offer
    CALLBACK = "callback"
    #: the fallback played: a message, or an offer not taken
    FALLBACK = "fallback"
    #: an unknown DID (recorded by the shell; the core never sees it)
    REFUSED = "refused"


class InboundState(StrEnum):
    WAITING = "waiting"
    #: Redirect sent to an agent's room, join not yet seen
    CONNECTING = "connecting"
    CONNECTED = "connected"
    #: handed to the dialplan's fallback (offer or message)
    FALLBACK = "fallback"


class LeadStatus(StrEnum):
    NEW = "new"
    #: waiting for a retry at ``next_due_at``
    RETRY = "retry"
    #: in a live call right now (write-ahead: set before the Originate)
    DIALING = "dialing"
    #: finished: no more attempts (see ``final_reason``)
    DONE = "done"


class AgentStatus(StrEnum):
    READY = "ready"
    #: picked for an answered call, the Redirect is on its way
    RESERVED = "reserved"
    TALKING = "talking"
    WRAP = "wrap"
    PAUSED = "paused"
    #: preview mode: looking at an offered lead, nothing dialed yet
    PREVIEW = "preview"


class CallState(StrEnum):
    DIALING = "dialing"
    #: answered, waiting for an agent (inside the connect deadline)
    WAITING = "waiting"
    #: answered, no agent came within the deadline: the dialplan plays the
    #: safe-harbor message; the core will never redirect it
    ABANDONING = "abandoning"
    #: Redirect sent to an agent's room, join not yet seen
    CONNECTING = "connecting"
    CONNECTED = "connected"


@dataclass(frozen=True, slots=True)
class Lead:
    """A number to call, as the hopper hands it to the core."""

    id: int
    campaign: str
    #: E.164 with a leading '+', validated on import
    phone: str
    #: attempts made so far (before this one)
    attempts: int = 0
    priority: int = 0
    timezone: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    #: attempts since the start of the callee's local day (the hopper counts them)
    attempts_today: int = 0
    #: a personal callback: only this agent takes it until ``callback_until``
    callback_agent: str | None = None
    callback_until: float | None = None
    #: due because the customer asked to be called back: it may go one
    #: attempt over the campaign's maximum (the customer asked for it)
    callback: bool = False


@dataclass(frozen=True, slots=True)
class LeadUpdate:
    """What the retry rules decided for a lead after an attempt."""

    lead_id: int
    status: LeadStatus
    attempts: int
    last_outcome: Outcome
    #: epoch seconds of the next try, for RETRY
    next_due_at: float | None = None
    #: why the lead is finished, for DONE (e.g. ``answered``, ``max_attempts``)
    final_reason: str | None = None
