"""Inbound queues: YAML files, validated and checked against the campaigns.

A blended contact centre has the same agents answer the customers who call
in and make the outbound calls in between, so a queue is written next to the
campaigns, in the same kind of file, and ``check-config`` reads both at once:
a queue naming an agent no campaign has, or handing callbacks to a campaign
that does not exist, is caught before the first caller waits for nobody.

The schema is as strict as the campaign's (unknown keys are errors, every
duration bounded: ``dialerd.rules.durations`` tells why) and its errors go
through the campaign loader's machinery, so they name file, line and field.

The loader lives here rather than in ``loader``: the queue checks need the
loaded campaigns, the campaign loader needs nothing of queues, and keeping
the arrow one way keeps ``loader`` from growing a second subject.

What is NOT here: routing an inbound call. The dialplan still refuses every
call from the trunk; these files are validated only (README, "Not done yet").
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from dialerd.campaign.loader import ConfigError, campaign_files, load_yaml_model, locate
from dialerd.campaign.model import AGENT_RE, NAME_RE, SOUND_RE, Campaign
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
        if not NAME_RE.fullmatch(v):
            raise ValueError("use 1-48 of a-z 0-9 _ -, starting with a letter or digit")
        return v

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


# --------------------------------------------------------------------- loading


@dataclass
class QueuesLoaded:
    """Every queue of a directory and what is wrong with the others.

    An ``error`` refuses its whole file; a ``warning`` is printed and the
    queue kept (both name file, line and field)."""

    queues: dict[str, Queue] = field(default_factory=dict)
    sources: dict[str, Path] = field(default_factory=dict)
    errors: list[ConfigError] = field(default_factory=list)
    warnings: list[ConfigError] = field(default_factory=list)


def load_queue_file(path: str | Path) -> Queue:
    """One queue file, alone (no cross-checks); raises :class:`ConfigError`."""
    queue, _ = load_yaml_model(path, Queue)
    return queue


def _at(root: yaml.Node, file: str, message: str, *loc: int | str) -> ConfigError:
    line, fld = locate(root, loc)
    return ConfigError(file, line, fld, message)


def _fallback_findings(
    q: Queue, root: yaml.Node, file: str, campaigns: Mapping[str, Campaign], queue_names: set[str]
) -> tuple[list[ConfigError], list[ConfigError]]:
    errors: list[ConfigError] = []
    warnings: list[ConfigError] = []
    for key in ("after_max_wait", "no_agents"):
        fb: Fallback = getattr(q, key)
        if fb.action is not Action.CALLBACK or fb.callback_campaign is None:
            continue
        name = fb.callback_campaign
        # point at the key the supervisor wrote: the action's own, else the queue's
        own = _has(root, key, "callback_campaign")
        loc: tuple[str, ...] = (key, "callback_campaign") if own else ("callback_campaign",)
        c = campaigns.get(name)
        if c is None:
            why = (
                f"{name!r} is an inbound queue; callbacks are dialed by an outbound campaign"
                if name in queue_names
                else f"no outbound campaign named {name!r} is loaded "
                f"({', '.join(sorted(campaigns)) or 'none'})"
            )
            errors.append(_at(root, file, f"{why} (used by {key})", *loc))
        elif not c.enabled:
            warnings.append(
                _at(
                    root,
                    file,
                    f"campaign {name!r} is disabled: callbacks booked by {key} wait until "
                    "it is enabled",
                    *loc,
                )
            )
    # the same key reported twice (both fallbacks use the queue's default) says it once
    return _dedupe(errors), _dedupe(warnings)


def _has(root: yaml.Node, *path: str) -> bool:
    node: yaml.Node | None = root
    for step in path:
        if not isinstance(node, yaml.MappingNode):
            return False
        node = next(
            (v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == step),
            None,
        )
    return node is not None


def _dedupe(items: list[ConfigError]) -> list[ConfigError]:
    seen: set[tuple[int | None, str | None]] = set()
    out: list[ConfigError] = []
    for e in items:
        if (e.line, e.field) not in seen:
            seen.add((e.line, e.field))
            out.append(e)
    return out


def _serving_findings(
    q: Queue, root: yaml.Node, file: str, campaigns: Mapping[str, Campaign]
) -> tuple[list[ConfigError], list[ConfigError]]:
    """Agents log in through a campaign (their room, their state), so an
    agent in no campaign could never be ready to answer."""
    errors: list[ConfigError] = []
    warnings: list[ConfigError] = []
    for i, name in enumerate(q.campaigns):
        c = campaigns.get(name)
        if c is None:
            known = ", ".join(sorted(campaigns)) or "none"
            errors.append(
                _at(root, file, f"no campaign named {name!r} is loaded ({known})", "campaigns", i)
            )
        elif not c.enabled:
            warnings.append(
                _at(
                    root,
                    file,
                    f"campaign {name!r} is disabled: its agents do not answer this queue",
                    "campaigns",
                    i,
                )
            )
    homes: dict[str, list[Campaign]] = {}
    for c in campaigns.values():
        for a in c.agents:
            homes.setdefault(a, []).append(c)
    for i, agent in enumerate(q.agents):
        found = homes.get(agent)
        if not found:
            errors.append(
                _at(
                    root,
                    file,
                    f"agent {agent} is in no loaded campaign: an agent logs in through "
                    "a campaign, so could never answer",
                    "agents",
                    i,
                )
            )
        elif not any(c.enabled for c in found):
            names = ", ".join(sorted(c.name for c in found))
            warnings.append(
                _at(
                    root,
                    file,
                    f"agent {agent} is only in disabled campaign(s) ({names}): "
                    "cannot log in to answer",
                    "agents",
                    i,
                )
            )
    return errors, warnings


def load_queues_dir(directory: str | Path, campaigns: Mapping[str, Campaign]) -> QueuesLoaded:
    """Every queue of ``directory``, checked against the loaded ``campaigns``.

    No directory is no queues (a dialer that only dials), not an error. As
    with campaigns, a bad file never stops the others, and a file that
    clashes with an earlier one (same name, a DID already taken by an
    enabled queue) is refused whole; "earlier" is file-name order.
    """
    out = QueuesLoaded()
    d = Path(directory)
    if not d.exists():
        return out
    if not d.is_dir():
        out.errors.append(ConfigError(str(d), None, None, "queues_dir is not a directory"))
        return out
    parsed: list[tuple[Path, Queue, yaml.Node]] = []
    for path in campaign_files(d):
        try:
            queue, root = load_yaml_model(path, Queue)
        except ConfigError as exc:
            out.errors.extend(exc.flatten())
            continue
        parsed.append((path, queue, root))
    queue_names = {q.name for _, q, _ in parsed}
    did_owner: dict[str, str] = {}
    for path, q, root in parsed:
        file = str(path)
        errors: list[ConfigError] = []
        if q.name in out.queues:
            errors.append(
                _at(
                    root,
                    file,
                    f"queue {q.name!r} is already defined in {out.sources[q.name]}",
                    "name",
                )
            )
        if q.enabled:
            for i, did in enumerate(q.dids):
                owner = did_owner.get(did)
                if owner is not None:
                    errors.append(
                        _at(
                            root,
                            file,
                            f"{did} is also a DID of enabled queue {owner!r} "
                            f"({out.sources[owner]}); a number reaches one queue",
                            "dids",
                            i,
                        )
                    )
        serve_errors, serve_warnings = _serving_findings(q, root, file, campaigns)
        fb_errors, fb_warnings = _fallback_findings(q, root, file, campaigns, queue_names)
        errors += serve_errors + fb_errors
        if errors:
            out.errors.extend(sorted(errors, key=lambda e: e.line or 0))
            continue
        out.warnings.extend(sorted(serve_warnings + fb_warnings, key=lambda e: e.line or 0))
        out.queues[q.name] = q
        out.sources[q.name] = path
        if q.enabled:
            for did in q.dids:
                did_owner[did] = q.name
    return out


def summary(q: Queue, campaigns: Mapping[str, Campaign]) -> str:
    """``check-config``'s line for a queue that loaded."""
    sl = q.service_level
    state = "" if q.enabled else "disabled, "
    return (
        f"queue {q.name}: OK ({state}{len(q.dids)} DIDs, {len(served_by(q, campaigns))} agents,"
        f" SL {sl.percent:g}%/{sl.within_s} s)"
    )


def describe(e: ConfigError, level: str) -> str:
    """A finding as ``file:line: field: level: message``."""
    return str(ConfigError(e.file, e.line, e.field, f"{level}: {e.message}"))
