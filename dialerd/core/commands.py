"""Commands out: what the core wants done. The shell carries them out in order.

Ordering contract for shells: commands returned by one ``handle`` call are
executed in list order, and a ``PlaceCall`` must be durably recorded
(write-ahead, attempt state ``dialing``) before its Originate is sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dialerd.core.models import InboundOutcome, Lead, LeadUpdate, Outcome


@dataclass(frozen=True, slots=True)
class LoadLeads:
    """Fetch up to ``limit`` due leads of ``campaign`` not already held by the core."""

    campaign: str
    limit: int


@dataclass(frozen=True, slots=True)
class PlaceCall:
    """Write the attempt ahead, then Originate it (Async, not awaited in turn)."""

    attempt_id: str
    campaign: str
    lead_id: int
    phone: str
    #: the full AMI channel, from the campaign's trunk template
    channel: str
    caller_id: str
    ring_timeout_s: float
    #: channel variables for the dialplan (validated AMI-safe by the shell)
    variables: dict[str, str] = field(default_factory=dict)
    started_at: float = 0.0
    #: an agent keyed this number: the store dials a lead in any state but
    #: "dialing" (a finished lead may be called again by hand)
    manual: bool = False


@dataclass(frozen=True, slots=True)
class Redirect:
    """Move the answered customer into the agent's room."""

    attempt_id: str
    channel: str
    agent_id: str


@dataclass(frozen=True, slots=True)
class Hangup:
    attempt_id: str
    channel: str
    cause: int = 16


@dataclass(frozen=True, slots=True)
class HangupAgent:
    """Hang up an agent's own channel (forced logout)."""

    agent_id: str
    channel: str


@dataclass(frozen=True, slots=True)
class RecordOutcome:
    """The attempt ended: store its outcome and the lead's new state atomically."""

    attempt_id: str
    campaign: str
    lead_id: int
    outcome: Outcome
    ended_at: float
    lead: LeadUpdate
    answered_at: float | None = None
    connected_at: float | None = None
    agent_id: str | None = None
    cause: int | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class ReleaseLeads:
    """Leads the core loaded but will not dial (campaign removed, drain)."""

    campaign: str
    lead_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class AgentStateChanged:
    """For logs, MQTT and reports: an agent moved to another state."""

    agent_id: str
    campaign: str | None
    state: str
    at: float
    #: the pause reason, when ``state`` is "paused"
    reason: str = ""


@dataclass(frozen=True, slots=True)
class SkipLead:
    """A lead the screening refused (DNC, window, 72 h lock, limits): not
    dialed; recorded in ``lead_skips`` with the reason. ``retry_at`` None:
    the lead is finished with ``reason`` as its final reason."""

    campaign: str
    lead_id: int
    reason: str
    detail: str
    at: float
    retry_at: float | None


@dataclass(frozen=True, slots=True)
class RecordDisposition:
    """An agent's disposition of a finished attempt: the attempt's
    ``disposition``, the lead's new state, and a DNC entry if any."""

    attempt_id: str
    campaign: str
    lead_id: int
    phone: str
    code: str
    lead: LeadUpdate
    at: float
    #: "campaign" or "global": add the phone to that DNC list
    dnc: str | None = None
    #: a callback: due at ``lead.next_due_at``, fetched before fresh leads
    callback: bool = False
    callback_agent: str | None = None
    callback_until: float | None = None


@dataclass(frozen=True, slots=True)
class AgentAck:
    """The answer to an agent's key: the dialplan waiting on ``channel``
    plays ``prompt`` (a name of ``asterisk.mapping.PROMPTS``). ``ok`` False:
    refused (the login dialplan asks again; other keys just hear why)."""

    channel: str
    ok: bool
    prompt: str


@dataclass(frozen=True, slots=True)
class AgentPrompt:
    """A prompt the agent hears in their room without pressing anything: the
    connect tone (then ``extra``, a campaign's announcement), a preview
    offer."""

    agent_id: str
    channel: str
    prompt: str
    extra: str = ""


@dataclass(frozen=True, slots=True)
class ScreenPop:
    """The lead for the agent's desktop (MQTT ``agent/<id>/screenpop``):
    ``kind`` "offer" (preview, before dialing) or "connect" (the customer is
    being connected)."""

    agent_id: str
    campaign: str
    kind: str
    lead: Lead
    at: float
    attempt_id: str | None = None


@dataclass(frozen=True, slots=True)
class AgentAction:
    """What an agent did by key, and whether it was accepted: recorded in
    ``agent_actions`` so every key press can be audited."""

    agent_id: str
    campaign: str | None
    action: str
    detail: str
    ok: bool
    at: float


# ------------------------------------------------------------------ inbound
@dataclass(frozen=True, slots=True)
class InboundFallback:
    """Nobody can take the caller (``reason`` ``max_wait`` or
    ``no_agents``): the shell sets the fallback's sounds on ``channel`` and
    Redirects it to ``[dialer-inbound-fallback]`` extension ``action``
    (``callback``: the offer, press 1; ``message``: a message, hang-up)."""

    call_id: str
    channel: str
    queue: str
    reason: str
    action: str
    offer_sound: str | None
    offer_timeout_s: int
    booked_sound: str | None
    sound: str


@dataclass(frozen=True, slots=True)
class MakeCallback:
    """A caller took the callback offer: make (or bring forward) a callback
    lead for ``phone`` in ``campaign``, due at its earliest legal time, then
    answer the dialplan waiting on ``channel`` (ok: the lead is written)."""

    call_id: str
    queue: str
    campaign: str
    phone: str
    at: float
    channel: str


@dataclass(frozen=True, slots=True)
class InboundPop:
    """The screen pop of an inbound caller (MQTT ``agent/<id>/screenpop``,
    kind ``inbound``): the shell adds the leads the store holds for
    ``caller`` and their last attempts."""

    agent_id: str
    queue: str
    call_id: str
    caller: str
    did: str
    at: float
    waited_s: float


@dataclass(frozen=True, slots=True)
class DisposeInbound:
    """An agent's disposition of an inbound caller: the code goes on the
    caller's row; ``dnc`` ("campaign" or "global") adds the caller's number
    to that list; ``callback_at``: a callback lead for the caller in
    ``campaign`` (the agent's), due then."""

    call_id: str
    queue: str
    campaign: str
    caller: str
    agent_id: str
    code: str
    at: float
    dnc: str | None = None
    callback_at: float | None = None


@dataclass(frozen=True, slots=True)
class RecordInbound:
    """An inbound call ended: one row per call, whatever became of it.
    ``answered_at``: the caller joined an agent's room; ``wait_s``: from
    arrival to that join, or to the hang-up or fallback."""

    call_id: str
    queue: str
    did: str
    caller: str
    arrived_at: float
    ended_at: float
    outcome: InboundOutcome
    wait_s: float
    answered_at: float | None = None
    agent_id: str | None = None
    #: ``max_wait`` or ``no_agents`` when a fallback played
    fallback: str | None = None
    #: the campaign the callback lead was made in
    callback_campaign: str | None = None
    cause: int | None = None


Command = (
    LoadLeads
    | PlaceCall
    | Redirect
    | Hangup
    | HangupAgent
    | RecordOutcome
    | ReleaseLeads
    | AgentStateChanged
    | SkipLead
    | RecordDisposition
    | AgentAck
    | AgentPrompt
    | ScreenPop
    | AgentAction
    | InboundFallback
    | MakeCallback
    | DisposeInbound
    | InboundPop
    | RecordInbound
)
