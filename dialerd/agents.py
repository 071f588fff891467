"""Agents and their PINs: the agents file, and the login check.

The PINs live here, in the daemon, not in Asterisk: the login dialplan sends
what was typed (UserEvent ``DialerKey`` with ``Key: login``) and plays the
verdict. So a PIN is changed by editing one file and ``systemctl reload``,
every attempt (good or bad) is recorded, and repeated wrong PINs lock the
agent id for a while, which a dialplan-only check could not do.

The file (``agents_file`` in dialerd.yaml)::

    agents:
      "1001": {name: Alice Example, pin: "4821"}
      "1002": {name: Bob Example, pin: "7730"}

Keep it readable by the dialerd user only (mode 0640): the PINs are in clear.
"""

from __future__ import annotations

import hmac
import re
from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from dialerd.campaign.loader import load_yaml_model

AGENT_RE = re.compile(r"^[0-9]{2,10}$")
PIN_RE = re.compile(r"^[0-9]{4,10}$")

#: wrong PINs for one agent id within LOCK_WINDOW_S that lock it ...
LOCK_AFTER = 5
LOCK_WINDOW_S = 600.0
#: ... for this long
LOCK_S = 900.0


class AgentEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(default="", max_length=80)
    #: 4-10 digits, typed on the phone's keypad
    pin: str

    @field_validator("pin", mode="before")
    @classmethod
    def _pin(cls, v: object) -> object:
        if isinstance(v, int):
            raise ValueError('quote the PIN ("0123"): as a number YAML drops leading zeros')
        if not isinstance(v, str) or not PIN_RE.fullmatch(v):
            raise ValueError("a PIN is 4-10 digits, quoted")
        return v


class AgentsFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    agents: dict[str, AgentEntry] = Field(default_factory=dict)

    @field_validator("agents", mode="before")
    @classmethod
    def _ids(cls, v: object) -> object:
        if isinstance(v, dict):
            for k in v:
                if not isinstance(k, str) or not AGENT_RE.fullmatch(k):
                    raise ValueError(f"agent id {k!r} must be 2-10 digits, quoted")
        return v


def load_agents_file(path: str | Path) -> AgentsFile:
    """Raises ``ConfigError`` naming the file, line and field."""
    agents, _ = load_yaml_model(path, AgentsFile)
    return agents


class Verdict(StrEnum):
    OK = "ok"
    WRONG_PIN = "wrong_pin"
    UNKNOWN_AGENT = "unknown_agent"
    LOCKED = "locked"


@dataclass
class LoginGuard:
    """Checks PINs and counts failures per agent id; pure (``now`` is given).

    An unknown agent id gets the same answer as a wrong PIN, so the phone
    does not tell which agent ids exist."""

    agents: AgentsFile
    _fails: dict[str, deque[float]] = field(default_factory=dict)
    _locked_until: dict[str, float] = field(default_factory=dict)

    def check(self, agent_id: str, pin: str, now: float) -> Verdict:
        until = self._locked_until.get(agent_id)
        if until is not None and now < until:
            return Verdict.LOCKED
        entry = self.agents.agents.get(agent_id)
        # compare even for an unknown id: the same time either way
        expected = entry.pin if entry is not None else "\x00"
        good = hmac.compare_digest(expected.encode(), pin.encode())
        if good and entry is not None:
            self._fails.pop(agent_id, None)
            self._locked_until.pop(agent_id, None)
            return Verdict.OK
        fails = self._fails.setdefault(agent_id, deque())
        fails.append(now)
        while fails and now - fails[0] > LOCK_WINDOW_S:
            fails.popleft()
        if len(fails) >= LOCK_AFTER:
            self._locked_until[agent_id] = now + LOCK_S
            fails.clear()
            return Verdict.LOCKED
        return Verdict.UNKNOWN_AGENT if entry is None else Verdict.WRONG_PIN

    def name(self, agent_id: str) -> str:
        entry = self.agents.agents.get(agent_id)
        return entry.name if entry is not None else ""
