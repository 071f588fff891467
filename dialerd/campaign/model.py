"""The campaign a supervisor writes in YAML, validated by pydantic.

Validation is strict (unknown keys are errors) because a typo in a compliance
setting that silently falls back to a default is how dialers break the law.
The loader (``dialerd.campaign.loader``) turns pydantic's errors into
messages naming file, line and field.
"""

from __future__ import annotations

import re
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from dialerd.core.models import Outcome
from dialerd.phone import PhoneError, normalize
from dialerd.rules.dispositions import (
    DEFAULT_RECYCLE_REASONS,
    Disposition,
    check_codes,
    default_dispositions,
)
from dialerd.rules.durations import RetryStep
from dialerd.rules.windows import Schedule

#: campaign names become AMI variables, log keys and MQTT topic levels
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,47}$")
#: agent ids become ConfBridge room names ``agent-<id>`` and dialplan extensions
AGENT_RE = re.compile(r"^[0-9]{2,10}$")
#: a sound path for Playback(): no options separator, no path escape
SOUND_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_/-]{0,126}$")
#: the trunk template: a technology, a resource with one {number} placeholder
TRUNK_RE = re.compile(r"^(PJSIP|SIP|IAX2|DAHDI|Local)/[A-Za-z0-9_.@{}+-]+$")
#: a trunk's name in dialerd.yaml ``trunks:``, which campaign files use
TRUNK_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
#: the legal limits an admin may lift for one campaign (dialerd.yaml
#: ``legal_overrides``), and the compliance field each one sets
LEGAL_OVERRIDES = {
    "ring_timeout": "ring_timeout_override",
    "abandon_target": "abandon_target_override",
    "legal_window": "legal_window_override",
}


def check_name(v: str) -> str:
    """A campaign's or a queue's name: it becomes AMI variables, log keys
    and MQTT topic levels."""
    if not NAME_RE.fullmatch(v):
        raise ValueError("use 1-48 of a-z 0-9 _ -, starting with a letter or digit")
    return v


def check_trunk_template(v: str) -> str:
    """A channel template: TECH/resource with one ``{number}`` or ``{e164}``."""
    if not TRUNK_RE.fullmatch(v):
        raise ValueError(
            "trunk must look like TECH/resource with {number} or {e164}, "
            "e.g. PJSIP/{number}@trunk-out"
        )
    stripped = v.replace("{number}", "").replace("{e164}", "")
    if "{" in stripped or "}" in stripped:
        raise ValueError("only {number} and {e164} placeholders are allowed")
    if "{number}" not in v and "{e164}" not in v:
        raise ValueError("trunk must contain {number} or {e164}")
    return v


class DialMode(StrEnum):
    PROGRESSIVE = "progressive"
    RATIO = "ratio"
    PREDICTIVE = "predictive"
    PREVIEW = "preview"
    #: baselines re-implemented for comparison (see dialerd.pacing.policies)
    VICIDIAL = "vicidial"
    SOONFREE = "soonfree"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SafeHarbor(_Strict):
    """What the safe-harbor recording must say: who called and a number to
    call back (the recording itself is the campaign's ``safe_harbor_sound``)."""

    seller: str = Field(min_length=1, max_length=80)
    callback_number: str

    @field_validator("callback_number")
    @classmethod
    def _e164(cls, v: str) -> str:
        try:
            return normalize(v, None)
        except PhoneError as exc:
            raise ValueError(f"{exc} (write it with its country code, e.g. +1...)") from None


class Compliance(_Strict):
    """The campaign's ``compliance:`` block: calling hours, the safe-harbor
    message, the legal overrides, dispositions and attempt limits::

        compliance:
          schedule:
            hours:
              mon-fri: ["09:00-20:00"]
              sat: ["10:00-14:00"]
            holidays: [2026-12-25, 2027-01-01]
            timezone: null            # hours read in the callee's local time
          safe_harbor:
            seller: Acme Insurance
            callback_number: "+12025550143"
          ring_timeout_override: false   # allow ring_timeout_s under 15 s
          abandon_target_override: false  # allow abandon_target above 3 %
          agent_guaranteed: false        # true disables the 72-hour abandon lock
          ofcom_amd_fp_rate: 0.0         # share of AMD "machine" verdicts that were people
          max_attempts_per_day: 3
          recycle_after_days: 30
          recycle_reasons: [max_attempts_no_answer, max_attempts_busy]
          dispositions:
            - {code: sale, label: Sale, dtmf: "1", final: true, sale: true}
            - {code: callback, label: Call back, dtmf: "3", callback: true}
            - {code: do_not_call, label: Do not call, dtmf: "5", final: true, dnc: campaign}
    """

    schedule: Schedule = Field(default_factory=Schedule)
    safe_harbor: SafeHarbor | None = None
    ring_timeout_override: bool = False
    abandon_target_override: bool = False
    #: allow ``schedule.legal_window`` wider than the law's 08:00-21:00.
    #: SANDBOX/TEST ONLY: simulated numbers, tests that run at any hour
    legal_window_override: bool = False
    #: an agent is always there when a call is answered: the 72-hour lock
    #: on abandoned numbers does not apply to this campaign
    agent_guaranteed: bool = False
    ofcom_amd_fp_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    dispositions: list[Disposition] = Field(default_factory=default_dispositions)
    max_attempts_per_day: int | None = Field(default=None, ge=1, le=50)
    #: finished leads with a ``recycle_reasons`` final reason come back after this
    recycle_after_days: int | None = Field(default=None, ge=1, le=3650)
    recycle_reasons: list[str] = Field(default_factory=lambda: list(DEFAULT_RECYCLE_REASONS))

    @field_validator("dispositions")
    @classmethod
    def _dispositions(cls, v: list[Disposition]) -> list[Disposition]:
        return check_codes(v)


class RetryRule(RetryStep):
    """When to try a lead again after an outcome (see ``RetryStep``)."""


def _no_retry() -> RetryRule:
    return RetryRule(delay_s=0, max_attempts=1)


class RetryRules(_Strict):
    """Per-outcome rules. An answered call is final (agent dispositions, a
    later issue, decide further); the others retry per their rule."""

    busy: RetryRule = RetryRule(delay_s=600, max_attempts=5)
    no_answer: RetryRule = RetryRule(delay_s=3600, max_attempts=5)
    congestion: RetryRule = RetryRule(delay_s=300, max_attempts=5)
    failed: RetryRule = Field(default_factory=_no_retry)
    machine: RetryRule = RetryRule(delay_s=7200, max_attempts=3)
    abandoned: RetryRule = RetryRule(delay_s=3600, max_attempts=3)
    customer_hangup: RetryRule = RetryRule(delay_s=3600, max_attempts=3)
    interrupted: RetryRule = RetryRule(delay_s=300, max_attempts=5)

    def for_outcome(self, outcome: Outcome) -> RetryRule | None:
        """None: the outcome is final (a conversation took place)."""
        if outcome is Outcome.ANSWERED:
            return None
        rule: RetryRule = getattr(self, outcome.value)
        return rule


class CallerId(_Strict):
    name: str = Field(default="", max_length=40)
    number: str

    @field_validator("name")
    @classmethod
    def _name_safe(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9 .,&'-]*", v):
            raise ValueError("caller id name may hold letters, digits, spaces and .,&'- only")
        return v

    @field_validator("number")
    @classmethod
    def _number_e164(cls, v: str) -> str:
        try:
            return normalize(v, None)
        except PhoneError as exc:
            raise ValueError(str(exc)) from None

    def ami_value(self) -> str:
        return f'"{self.name}" <{self.number}>' if self.name else self.number


class Pacing(_Strict):
    """Parameters of the pacing policies (see docs/pacing.md).

    The abandon target itself is the campaign's ``abandon_target``.
    """

    #: the predictive engine's set-point as a share of the abandon target
    #: (the hour and 30-day guards hold the limit itself). These defaults are
    #: the engine's tuned ones: ``Predictive.from_campaign`` passes them on as
    #: they are (docs/pacing.md)
    aim: float = Field(default=0.85, ge=0.3, le=1.0)
    #: never more live lines than this per logged-in agent
    max_lines_per_agent: float = Field(default=10.0, ge=1.0, le=50.0)
    #: dial progressively until this many live answers were seen ...
    warmup_answers: int = Field(default=10, ge=1, le=10000)
    #: ... and this many calls were completed by agents
    warmup_talks: int = Field(default=5, ge=1, le=10000)
    #: integral gain of the abandon loop (log threshold per live answer, up
    #: to 20 active agents; x sqrt(20 / agents) above)
    gain: float = Field(default=0.004, gt=0, le=0.1)
    #: weight of the calls still to be dialed that will answer first
    future_weight: float = Field(default=0.0, ge=0, le=3)
    #: hold the abandon rate of every rolling hour too
    hour_guard: bool = True
    #: ``vicidial`` mode: the adaptive dial level's cap and intensity
    vicidial_max_level: float = Field(default=3.0, ge=1.0, le=10.0)
    vicidial_intensity: float = Field(default=0.0, ge=-40, le=40)
    #: ``soonfree`` mode: probability that a busy agent is free soon
    soonfree_probability: float = Field(default=0.97, gt=0.5, lt=1.0)


class MachineAction(StrEnum):
    """What to do when AMD says "machine"."""

    #: hang up at once; the lead is retried by ``retry.machine``
    HANGUP = "hangup"
    #: wait for the end of the greeting, play ``message_sound``, hang up
    MESSAGE = "message"
    #: treat it as a person: the call goes to an agent (and counts as live)
    CONNECT = "connect"


class Preview(_Strict):
    """Preview mode: the agent sees the lead (MQTT screen pop, a tone) and
    accepts ('*#') or skips ('**#') it before anything is dialed."""

    #: dial the offered lead by itself after this many seconds (0: wait for
    #: the agent's key however long it takes)
    timeout_s: float = Field(default=0, ge=0, le=3600)
    #: a skipped lead is due again after this many seconds (another agent,
    #: or the same later, gets it then)
    skip_retry_s: float = Field(default=3600, ge=0, le=30 * 86400)


class Amd(_Strict):
    """Answering-machine detection: Asterisk's AMD() on every answered call.

    The parameters are AMD()'s own (milliseconds), passed per call so each
    campaign can tune them; the 2 s safe-harbor clock starts after the verdict.
    """

    enabled: bool = False
    initial_silence_ms: int = Field(default=2500, ge=500, le=10000)
    greeting_ms: int = Field(default=1500, ge=500, le=10000)
    after_greeting_silence_ms: int = Field(default=800, ge=100, le=5000)
    total_analysis_time_ms: int = Field(default=5000, ge=1000, le=10000)
    min_word_length_ms: int = Field(default=100, ge=10, le=1000)
    between_words_silence_ms: int = Field(default=50, ge=10, le=1000)
    maximum_number_of_words: int = Field(default=2, ge=1, le=10)
    silence_threshold: int = Field(default=256, ge=1, le=32767)
    maximum_word_length_ms: int = Field(default=5000, ge=100, le=10000)
    on_machine: MachineAction = MachineAction.HANGUP
    #: Playback() path for ``on_machine: message`` (seller and call-back number)
    message_sound: str | None = None

    @field_validator("message_sound")
    @classmethod
    def _sound(cls, v: str | None) -> str | None:
        if v is not None and (not SOUND_RE.fullmatch(v) or ".." in v):
            raise ValueError("a sound path like custom/acme-message (no extension)")
        return v

    @model_validator(mode="after")
    def _message(self) -> Amd:
        if self.on_machine is MachineAction.MESSAGE and not self.message_sound:
            raise ValueError("on_machine: message needs message_sound")
        return self

    def params(self) -> str:
        """AMD()'s positional arguments, in its order, ``:``-separated (AMI
        splits a Variable header at commas; the dialplan CUTs them apart)."""
        return ":".join(
            str(v)
            for v in (
                self.initial_silence_ms,
                self.greeting_ms,
                self.after_greeting_silence_ms,
                self.total_analysis_time_ms,
                self.min_word_length_ms,
                self.between_words_silence_ms,
                self.maximum_number_of_words,
                self.silence_threshold,
                self.maximum_word_length_ms,
            )
        )


class Campaign(_Strict):
    name: str
    enabled: bool = True
    #: in a campaign file, the name of one of dialerd.yaml's ``trunks``
    #: (admin-owned); once loaded, that trunk's AMI channel template, where
    #: ``{number}`` is the E.164 number without '+' and ``{e164}`` with it,
    #: e.g. ``PJSIP/{number}@trunk-out``
    trunk: str
    caller_id: CallerId
    agents: list[str] = Field(min_length=0)
    dial_mode: DialMode = DialMode.PROGRESSIVE
    #: lines per logged-in agent in ``ratio`` mode; cap for the others
    dial_ratio: float = Field(default=1.0, ge=1.0, le=5.0)
    max_lines: int = Field(default=10, ge=1, le=20000)
    ring_timeout_s: int = Field(default=25, ge=5, le=120)
    wrap_up_s: float = Field(default=10.0, ge=0, le=3600)
    #: the core stops trying to connect an answered call after this long; the
    #: dialplan's own fail-safe plays the message at 1.8 s (inside the law's
    #: 2 s), so it must be below 1.7, leaving a Redirect time to land
    connect_deadline_s: float = Field(default=1.5, gt=0, le=1.7)
    #: Playback() path (without extension) of the safe-harbor recording
    safe_harbor_sound: str
    #: above 0.03 only with ``compliance.abandon_target_override`` (check-config)
    abandon_target: float = Field(default=0.03, gt=0, le=0.5)
    #: region for numbers written without a country code (ISO 3166 alpha-2)
    default_region: str = Field(default="US", pattern=r"^[A-Z]{2}$")
    retry: RetryRules = Field(default_factory=RetryRules)
    pacing: Pacing = Field(default_factory=Pacing)
    compliance: Compliance = Field(default_factory=Compliance)
    amd: Amd = Field(default_factory=Amd)
    #: an agent's callback goes to that agent (personal); after this grace
    #: past the due time any agent of the campaign may take it
    callback_personal: bool = True
    callback_grace_s: float = Field(default=900, ge=0, le=7 * 86400)
    preview: Preview = Field(default_factory=Preview)
    #: a short beep to the agent as a customer is connected (the "zip
    #: tone"); the agent leaves the room's audio while it plays (~0.3 s)
    connect_tone: bool = True
    #: played to the agent after the connect tone, e.g. a recording of the
    #: campaign's name (a sound path like safe_harbor_sound); none: tone only
    connect_announcement: str | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_name(v)

    @field_validator("agents")
    @classmethod
    def _agents(cls, v: list[str]) -> list[str]:
        for a in v:
            if not AGENT_RE.fullmatch(a):
                raise ValueError(f"agent id {a!r} must be 2-10 digits")
        if len(set(v)) != len(v):
            raise ValueError("agent ids repeat")
        return v

    @field_validator("trunk")
    @classmethod
    def _trunk(cls, v: str) -> str:
        # a campaign file names one of dialerd.yaml's trunks; the loader
        # swaps the name for its template (``campaign.site``). A template
        # stays valid here for models built in code (simulator, tests).
        if TRUNK_NAME_RE.fullmatch(v):
            return v
        return check_trunk_template(v)

    @field_validator("safe_harbor_sound", "connect_announcement")
    @classmethod
    def _sound(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if not SOUND_RE.fullmatch(v) or ".." in v:
            raise ValueError("a sound path like custom/acme-safe-harbor (no extension)")
        return v

    @model_validator(mode="after")
    def _lines(self) -> Campaign:
        return self

    @property
    def overrides(self) -> tuple[str, ...]:
        """The legal overrides in force (names of ``LEGAL_OVERRIDES``)."""
        comp = self.compliance
        return tuple(k for k, field in LEGAL_OVERRIDES.items() if getattr(comp, field))

    def channel_for(self, e164: str) -> str:
        """The AMI channel for a validated E.164 number. A campaign loaded
        without a site keeps its trunk's name (the simulator never dials it;
        the daemon and ``check-config`` always bind campaigns to dialerd.yaml)."""
        return self.trunk.replace("{number}", e164.lstrip("+")).replace("{e164}", e164)
