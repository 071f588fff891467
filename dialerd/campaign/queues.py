"""Inbound queues: YAML files, validated and checked against the campaigns.

A blended contact centre has the same agents answer the customers who call
in and make the outbound calls in between, so a queue is written next to the
campaigns, in the same kind of file, and ``check-config`` reads both at once:
a queue naming an agent no campaign has, or handing callbacks to a campaign
that does not exist, is caught before the first caller waits for nobody.

The schema is as strict as the campaign's (unknown keys are errors, every
duration bounded: ``dialerd.rules.durations`` tells why) and its errors go
through the campaign loader's machinery, so they name file, line and field.

Loading a directory and checking it against the campaigns is
``queue_loader``'s: what a queue file may say is one question, whether it
agrees with the rest of the configuration another.

Routing a caller is the core's (``dialerd.core.inbound``); the daemon loads
these files (``dialerd.daemon.queues``) and answers the dialplan's question
about a DID from them (``dialerd.daemon.inbound_agi``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from dialerd.campaign.model import AGENT_RE, NAME_RE, SOUND_RE, Campaign, check_name
from dialerd.phone import PhoneError, normalize

#: the longest a caller may be kept waiting: past an hour nobody is served,
#: they are held hostage (and a one-line typo must not make it a year)
MAX_WAIT_S = 3600
#: how long the callback offer waits for the caller's key
MAX_OFFER_TIMEOUT_S = 60
#: a prompt loop's period: shorter and the caller hears only the prompt
MIN_PROMPT_EVERY_S = 5
MAX_PROMPT_EVERY_S = 600
#: a queue is reached through at most this many numbers
MAX_DIDS = 200
#: a ``musiconhold.conf`` class name, passed to Asterisk's MusicOnHold()
MOH_CLASS_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_sound(v: str | None) -> str | None:
    if v is not None and (not SOUND_RE.fullmatch(v) or ".." in v):
        raise ValueError("a sound path like custom/support-welcome (no extension)")
    return v


def _did(raw: str) -> str:
    if not raw.strip().startswith("+"):
        raise ValueError(f"{raw!r}: write a DID with its country code, e.g. +442071234567")
    try:
        return normalize(raw, None)
    except PhoneError as exc:
        raise ValueError(str(exc)) from None


def _agent(a: str) -> str:
    if not AGENT_RE.fullmatch(a):
        raise ValueError(f"agent id {a!r} must be 2-10 digits")
    return a


def _campaign_name(c: str) -> str:
    if not NAME_RE.fullmatch(c):
        raise ValueError(f"campaign name {c!r}: 1-48 of a-z 0-9 _ -, starting a-z 0-9")
    return c


#: each item validated on its own, so an error names its index (``dids[2]``)
Did = Annotated[str, AfterValidator(_did)]
AgentId = Annotated[str, AfterValidator(_agent)]
CampaignName = Annotated[str, AfterValidator(_campaign_name)]


class ServiceLevel(_Strict):
    """The target the queue is run for: ``percent`` of the callers answered
    within ``within_s`` seconds (80/20 is the classic contact-centre one)."""

    percent: float = Field(gt=0, le=100)
    within_s: int = Field(ge=1, le=MAX_WAIT_S)


class Action(StrEnum):
    #: offer a call back (press 1); a lead for the caller's number is made in
    #: ``callback_campaign``, due at that campaign's earliest legal time
    CALLBACK = "callback"
    #: play ``sound`` and hang up cleanly
    MESSAGE = "message"


class Fallback(_Strict):
    """What happens to a caller nobody can answer: after ``max_wait_s``
    (``after_max_wait``) or at once when no agent of the queue is logged in
    (``no_agents``).

    ``message``: ``sound`` plays and the call ends. ``callback``:
    ``offer_sound`` plays ("press 1 to be called back"); on 1 within
    ``offer_timeout_s`` the callback lead is made and ``booked_sound`` (if
    any) plays; with no key, or a withheld or invalid caller number (there is
    nobody to call back), ``sound`` plays. Either way the call then ends.
    """

    action: Action
    #: the outbound campaign that calls back; default: the queue's own
    #: ``callback_campaign``
    callback_campaign: CampaignName | None = None
    offer_sound: str | None = Field(default=None, validate_default=True)
    offer_timeout_s: int = Field(default=10, ge=1, le=MAX_OFFER_TIMEOUT_S)
    booked_sound: str | None = None
    #: the last thing the caller hears before the clean hang-up
    sound: str

    @field_validator("callback_campaign")
    @classmethod
    def _campaign(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is not None and info.data.get("action") is Action.MESSAGE:
            raise ValueError("only with action: callback")
        return v

    @field_validator("offer_sound")
    @classmethod
    def _offer(cls, v: str | None, info: ValidationInfo) -> str | None:
        action = info.data.get("action")
        if action is Action.CALLBACK and v is None:
            raise ValueError('action: callback needs the sound that offers it ("press 1 ...")')
        if action is Action.MESSAGE and v is not None:
            raise ValueError("only with action: callback")
        return _check_sound(v)

    @field_validator("offer_timeout_s")
    @classmethod
    def _offer_timeout(cls, v: int, info: ValidationInfo) -> int:
        if info.data.get("action") is Action.MESSAGE:
            raise ValueError("only with action: callback")
        return v

    @field_validator("booked_sound")
    @classmethod
    def _booked(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is not None and info.data.get("action") is Action.MESSAGE:
            raise ValueError("only with action: callback")
        return _check_sound(v)

    @field_validator("sound")
    @classmethod
    def _sound(cls, v: str) -> str:
        _check_sound(v)
        return v


class Hold(_Strict):
    """What a waiting caller hears: ``music`` (a ``musiconhold.conf`` class)
    or ``prompt`` (a recording) played every ``every_s`` seconds."""

    music: str | None = None
    prompt: str | None = None
    every_s: int | None = Field(
        default=None, ge=MIN_PROMPT_EVERY_S, le=MAX_PROMPT_EVERY_S, validate_default=True
    )

    @field_validator("music")
    @classmethod
    def _music(cls, v: str | None) -> str | None:
        if v is not None and not MOH_CLASS_RE.fullmatch(v):
            raise ValueError("a music-on-hold class of musiconhold.conf, e.g. default")
        return v

    @field_validator("prompt")
    @classmethod
    def _prompt(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is not None and info.data.get("music") is not None:
            raise ValueError("give music or prompt, not both")
        return _check_sound(v)

    @field_validator("every_s")
    @classmethod
    def _every(cls, v: int | None, info: ValidationInfo) -> int | None:
        if "prompt" not in info.data:
            return v  # the prompt's own error is reported
        prompt = info.data["prompt"]
        if prompt is not None and v is None:
            raise ValueError("prompt needs every_s (seconds from one start to the next)")
        if prompt is None and v is not None:
            raise ValueError("only with prompt")
        return v

    @model_validator(mode="after")
    def _something(self) -> Hold:
        if self.music is None and self.prompt is None:
            raise ValueError("hold needs music (a class) or prompt with every_s")
        return self


class Queue(_Strict):
    """One inbound queue (``queues_dir``/*.yaml)."""

    name: str
    enabled: bool = True
    #: the dialed numbers that reach this queue, E.164; a DID belongs to one
    #: enabled queue
    dids: list[Did] = Field(min_length=1, max_length=MAX_DIDS)
    #: agents who answer, by id; and/or ``campaigns``, whose agents answer
    agents: list[AgentId] = Field(default_factory=list)
    campaigns: list[CampaignName] = Field(default_factory=list, validate_default=True)
    #: higher first, among waiting inbound callers when an agent frees up.
    #: An answered outbound call inside its connect window always goes first,
    #: whatever this says: it has under 2 s before the law calls it an
    #: abandon, a queued caller has ``max_wait_s``
    priority: int = Field(default=0, ge=0, le=100)
    service_level: ServiceLevel
    max_wait_s: int = Field(ge=5, le=MAX_WAIT_S)
    #: the default of ``after_max_wait``/``no_agents`` ``callback_campaign``
    callback_campaign: CampaignName | None = None
    after_max_wait: Fallback
    no_agents: Fallback
    hold: Hold
    #: played once when the caller enters the queue, before ``hold``
    announce_sound: str | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_name(v)

    @field_validator("dids", "agents")
    @classmethod
    def _once(cls, v: list[str]) -> list[str]:
        repeated = sorted({x for x in v if v.count(x) > 1})
        if repeated:
            raise ValueError(f"listed more than once: {', '.join(repeated)}")
        return v

    @field_validator("campaigns")
    @classmethod
    def _campaigns(cls, v: list[str], info: ValidationInfo) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("campaign names repeat")
        if not v and info.data.get("agents") == []:
            raise ValueError("a queue needs agents, campaigns (whose agents answer) or both")
        return v

    @field_validator("max_wait_s")
    @classmethod
    def _max_wait(cls, v: int, info: ValidationInfo) -> int:
        sl = info.data.get("service_level")
        if isinstance(sl, ServiceLevel) and sl.within_s > v:
            raise ValueError(
                f"{v} s is shorter than service_level.within_s ({sl.within_s} s): "
                "no caller waits long enough for the target to mean anything"
            )
        return v

    @field_validator("after_max_wait", "no_agents")
    @classmethod
    def _fallback(cls, v: Fallback, info: ValidationInfo) -> Fallback:
        """A callback with no campaign of its own takes the queue's, so the
        model always says where the lead goes."""
        if v.action is not Action.CALLBACK or v.callback_campaign is not None:
            return v
        if "callback_campaign" not in info.data:
            return v  # the queue's callback_campaign is itself wrong, and said so
        default = info.data["callback_campaign"]
        if default is None:
            raise ValueError(
                "action: callback needs callback_campaign (here, or at the top of the "
                "file for every callback of the queue): the outbound campaign that calls back"
            )
        return v.model_copy(update={"callback_campaign": default})

    @field_validator("announce_sound")
    @classmethod
    def _announce(cls, v: str | None) -> str | None:
        return _check_sound(v)


def served_by(queue: Queue, campaigns: Mapping[str, Campaign]) -> frozenset[str]:
    """The agents who answer the queue: its own, and those of its enabled
    campaigns (a disabled campaign's agents are not working it)."""
    agents = set(queue.agents)
    for name in queue.campaigns:
        c = campaigns.get(name)
        if c is not None and c.enabled:
            agents.update(c.agents)
    return frozenset(agents)


def summary(q: Queue, campaigns: Mapping[str, Campaign]) -> str:
    """``check-config``'s line for a queue that loaded."""
    sl = q.service_level
    state = "" if q.enabled else "disabled, "
    return (
        f"queue {q.name}: OK ({state}{len(q.dids)} DIDs, {len(served_by(q, campaigns))} agents,"
        f" SL {sl.percent:g}%/{sl.within_s} s)"
    )
