"""Supervisor commands as they arrive from outside (MQTT, the control socket):
whatever the JSON holds, ``Supervisor.command`` answers with a reply and
queues nothing for a command it refuses; it never raises."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import structlog
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dialerd.campaign.model import Campaign
from dialerd.core import events as ev
from dialerd.daemon.shell import Shell
from dialerd.daemon.supervisor import Supervisor
from dialerd.settings import Settings

#: the documented rule (README): at most 64 printable characters
MAX_REASON = 64


def make_supervisor(tmp_path: Path | None = None) -> Supervisor:
    """A supervisor over a bare shell whose core knows campaign ``c1`` and
    has agent ``1001`` logged in; nothing consumes the shell's queue."""
    settings = Settings.model_validate(
        {
            "ami": {"username": "dialerd", "secret": "x"},
            "campaigns_dir": str(tmp_path or "."),
        }
    )
    shell = Shell(settings, clock=lambda: 100.0)
    camp = Campaign.model_validate(
        {
            "name": "c1",
            "trunk": "Local/{number}@sim-customers",
            "caller_id": {"name": "Acme", "number": "+442071234567"},
            "agents": ["1001", "1002"],
            "safe_harbor_sound": "custom/safe",
            "max_lines": 10,
        }
    )
    shell.core.handle(ev.CampaignLoaded(100.0, camp))
    shell.core.handle(ev.AmiUp(100.0))
    shell.core.handle(ev.AgentJoined(100.0, "1001", "Local/1001@a;2", "u-1001"))
    return Supervisor(shell)


def _queued(sup: Supervisor) -> list[Any]:
    out = []
    while not sup.shell.queue.empty():
        out.append(sup.shell.queue.get_nowait())
    return out


HOSTILE_LEVELS: list[Any] = [
    10**400,  # OverflowError in float()
    -(10**400),
    10**20,
    float("nan"),
    float("inf"),
    float("-inf"),
    True,
    False,
    "2",
    [2],
    {"level": 2},
    0.5,
    5.0001,
    0,
    6,
]


@pytest.mark.parametrize("level", HOSTILE_LEVELS, ids=lambda v: repr(v)[:20])
def test_a_dial_level_out_of_range_or_of_the_wrong_type_is_refused(level: Any) -> None:
    sup = make_supervisor()
    r = sup.command({"command": "set_dial_level", "campaign": "c1", "max_level": level})
    assert r["ok"] is False and "max_level" in r["error"]
    assert _queued(sup) == []


@pytest.mark.parametrize("level", [1, 1.0, 2.5, 5, 5.0, None])
def test_a_dial_level_in_range_is_taken(level: Any) -> None:
    sup = make_supervisor()
    r = sup.command({"command": "set_dial_level", "campaign": "c1", "max_level": level})
    assert r == {"ok": True, "command": "set_dial_level", "campaign": "c1"}
    (e,) = _queued(sup)
    assert isinstance(e, ev.SetDialLevel)
    assert e.max_level == (None if level is None else float(level))


BAD_REASONS: list[Any] = [
    "x" * (MAX_REASON + 1),
    "x" * 60_000,
    "line\nbreak",
    "tab\there",
    "bell\x07",
    "lone \ud800 surrogate",
    "\u202eright-to-left override",
    123,
    ["coaching"],
    {"why": "coaching"},
]


@pytest.mark.parametrize("reason", BAD_REASONS, ids=lambda r: repr(r)[:30])
@pytest.mark.parametrize(
    "cmd",
    [{"command": "pause", "campaign": "c1"}, {"command": "agent_pause", "agent": "1001"}],
    ids=["campaign", "agent"],
)
def test_a_pause_reason_is_short_printable_text(cmd: dict[str, Any], reason: Any) -> None:
    sup = make_supervisor()
    with structlog.testing.capture_logs() as logs:
        r = sup.command({**cmd, "reason": reason})
    assert r["ok"] is False and "reason" in r["error"]
    assert len(r["error"]) < 200
    assert _queued(sup) == []
    assert not any("x" * 100 in repr(e) for e in logs), "a long reason reached the log"


@pytest.mark.parametrize("reason", ["", "coaching", "briefing: new script", "é" * MAX_REASON])
def test_a_good_reason_is_taken(reason: str) -> None:
    sup = make_supervisor()
    assert sup.command({"command": "pause", "campaign": "c1", "reason": reason})["ok"] is True
    assert sup.command({"command": "agent_pause", "agent": "1001", "reason": reason})["ok"] is True
    camp, agent = _queued(sup)
    assert camp.reason == reason and agent.reason == reason


@pytest.mark.parametrize(
    "cmd",
    [
        {"command": "pause", "campaign": ["c1"]},
        {"command": "pause", "campaign": "c" * 100_000},
        {"command": "pause"},
        {"command": "agent_logout", "agent": 1001},
        {"command": "agent_logout", "agent": {"id": "1001"}},
        {"command": ["pause"], "campaign": "c1"},
        {"command": "x" * 100_000},
        {"command": None},
        {},
    ],
    ids=lambda c: repr(c)[:40],
)
def test_names_of_the_wrong_type_are_refused_with_a_short_error(cmd: dict[str, Any]) -> None:
    sup = make_supervisor()
    r = sup.command(cmd)
    assert r["ok"] is False and len(r["error"]) < 200
    assert _queued(sup) == []


def test_the_valid_commands_are_queued() -> None:
    sup = make_supervisor()
    for c in (
        {"command": "pause", "campaign": "c1", "reason": "briefing"},
        {"command": "resume", "campaign": "c1"},
        {"command": "agent_pause", "agent": "1001", "reason": "coaching"},
        {"command": "agent_unpause", "agent": "1001"},
        {"command": "agent_logout", "agent": "1001"},
    ):
        assert sup.command(c)["ok"] is True, c
    kinds = [type(e).__name__ for e in _queued(sup)]
    assert kinds == ["CampaignPause", "CampaignPause", "AgentPause", "AgentPause", "AgentLogout"]


# ------------------------------------------------------------------ fuzzing

_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from([10**400, -(10**30), 2**63])
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(st.characters(exclude_categories=()), max_size=80)
    | st.sampled_from(["c1", "1001", "\ud800", "x" * 5000])
)
_values = st.recursive(
    _scalars,
    lambda kids: (
        st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4)
    ),
    max_leaves=12,
)
_commands = st.fixed_dictionaries(
    {},
    optional={
        "command": st.sampled_from(
            [
                "pause",
                "resume",
                "set_dial_level",
                "agent_pause",
                "agent_unpause",
                "agent_logout",
                "status",
            ]
        )
        | _values,
        "campaign": st.sampled_from(["c1", "nope"]) | _values,
        "agent": st.sampled_from(["1001", "1002"]) | _values,
        "max_level": _values,
        "reason": _values,
    },
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_commands)
def test_any_command_gets_a_reply_that_can_be_sent(c: dict[str, Any]) -> None:
    sup = make_supervisor()
    r = sup.command(c)
    assert isinstance(r, dict) and isinstance(r["ok"], bool)
    json.dumps(r, allow_nan=False).encode("utf-8")  # sendable as is
    queued = _queued(sup)
    if not r["ok"]:
        assert queued == []
        assert len(r["error"]) < 200
    else:
        (e,) = queued
        if isinstance(e, ev.SetDialLevel) and e.max_level is not None:
            assert math.isfinite(e.max_level) and 1.0 <= e.max_level <= 5.0
        if isinstance(e, ev.CampaignPause | ev.AgentPause):
            assert len(e.reason) <= MAX_REASON and (e.reason == "" or e.reason.isprintable())
