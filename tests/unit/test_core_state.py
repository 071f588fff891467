"""The core's moves as tables (dialerd/core/state.py): every status has its
row, a move not in the table raises, the counters have one writer, and the
test harness's recount sees a skewed counter."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from dialerd.core import events as ev
from dialerd.core.models import AgentStatus, CallState, Lead
from dialerd.core.state import (
    AGENT_TRANSITIONS,
    CALL_TRANSITIONS,
    Call,
    IllegalTransition,
    set_agent_status,
    set_call_state,
)
from dialerd.core.testing import CoreHarness, campaign, check_invariants, leads

CORE = Path(__file__).resolve().parents[2] / "dialerd" / "core"
#: the attributes only state.py may assign
GUARDED = {"status", "state", "waiting", "_talking", "_wrap", "_paused_agents", "_dialing", "_live"}


def test_every_status_and_state_has_its_row() -> None:
    assert set(AGENT_TRANSITIONS) == set(AgentStatus)
    for row in AGENT_TRANSITIONS.values():
        assert set(row) <= set(AgentStatus) and all(row.values())
    assert set(CALL_TRANSITIONS) == {None, *CallState}
    for old, moves in CALL_TRANSITIONS.items():
        assert set(moves) <= {None, *CallState} and all(moves.values())
        assert old is None or None in moves, f"a {old} call must be able to end"


def test_an_illegal_agent_move_raises_and_moves_no_counter() -> None:
    w = CoreHarness(campaign(wrap_up_s=30))
    w.join("1001")
    w.do(ev.LeadsLoaded(w.now, "c1", leads(1), exhausted=True))
    (p,) = w.placed()
    w.answer(p.attempt_id)
    w.connect(p.attempt_id, "1001")
    run, agent = w.core.campaigns["c1"], w.core.agents["1001"]
    assert run.talking == 1
    with pytest.raises(IllegalTransition, match="talking -> preview"):
        set_agent_status(agent, AgentStatus.PREVIEW, run)
    assert agent.status is AgentStatus.TALKING and run.talking == 1
    with pytest.raises(AttributeError):
        run.talking = 0  # type: ignore[misc]


def test_an_illegal_call_move_raises() -> None:
    w = CoreHarness(campaign())
    w.join("1001")
    w.do(ev.LeadsLoaded(w.now, "c1", leads(1), exhausted=True))
    (p,) = w.placed()
    run, call = w.core.campaigns["c1"], w.core.calls[p.attempt_id]
    with pytest.raises(IllegalTransition, match="dialing -> connected"):
        set_call_state(run, call, CallState.CONNECTED)
    assert call.state is CallState.DIALING and run.dialing == 1
    stray = Call("x", "c1", Lead(5, "c1", "+442071200005"), CallState.WAITING, w.now)
    with pytest.raises(IllegalTransition):
        set_call_state(run, stray, CallState.CONNECTED)


def test_only_state_py_moves_statuses_states_and_counters() -> None:
    """Any other module of the core that assigned an agent's status, a
    call's state or a counter would bypass the tables."""
    found = []
    for path in sorted(CORE.glob("*.py")):
        if path.name == "state.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[ast.expr] = []
            if isinstance(node, ast.Assign):
                targets = list(node.targets)
            elif isinstance(node, ast.AugAssign | ast.AnnAssign):
                targets = [node.target]
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                owner = node.func.value
                if isinstance(owner, ast.Attribute) and owner.attr == "waiting":
                    targets = [owner]  # run.waiting.append(...) and the like
            for t in targets:
                for sub in ast.walk(t):
                    if isinstance(sub, ast.Attribute) and sub.attr in GUARDED:
                        found.append(f"{path.name}:{sub.lineno} {sub.attr}")
    assert found == []


def test_the_harness_recount_sees_a_skewed_counter() -> None:
    w = CoreHarness(campaign())
    w.join("1001")
    check_invariants(w.core)
    w.core.campaigns["c1"]._paused_agents += 1
    with pytest.raises(AssertionError, match="paused counter 1, recount 0"):
        w.tick(1)
