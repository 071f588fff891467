"""Pacing policies: how many calls to place now, from a snapshot.

A policy sees only numbers the core keeps as running counters, so a decision
costs the same with ten leads or ten million. Policies may keep state
between decisions (a controller's dial level) but never do I/O and never read
a clock: ``now`` is in the snapshot.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class PacingSnapshot:
    now: float
    agents_logged_in: int
    agents_ready: int
    agents_talking: int
    agents_wrap: int
    #: originated, not answered yet
    calls_dialing: int
    #: answered, waiting for an agent
    calls_waiting: int
    #: every live call of the campaign, connected ones included
    lines_in_use: int
    max_lines: int
    dial_ratio: float


class Policy(Protocol):
    name: str

    def calls_to_place(self, s: PacingSnapshot) -> int:
        """New calls to originate now (>= 0, within the line limit)."""
        ...


def _cap(n: int, s: PacingSnapshot) -> int:
    return max(0, min(n, s.max_lines - s.lines_in_use))


class Progressive:
    """One line per ready agent: never abandons while agents stay logged in."""

    name = "progressive"

    def calls_to_place(self, s: PacingSnapshot) -> int:
        return _cap(s.agents_ready - s.calls_dialing - s.calls_waiting, s)


class Ratio:
    """``dial_ratio`` lines per ready agent (VICIdial's fixed dial level)."""

    name = "ratio"

    def calls_to_place(self, s: PacingSnapshot) -> int:
        target = math.ceil(s.dial_ratio * s.agents_ready - 1e-9)
        return _cap(target - s.calls_dialing - s.calls_waiting, s)


def make_policy(mode: str) -> Policy:
    """The policy object for a campaign's ``dial_mode``.

    ``predictive`` falls back to progressive until the predictive engine
    lands (it never places more calls than progressive would, so it cannot
    raise the abandon rate); ``preview`` places calls like progressive until
    agent-side preview lands.
    """
    if mode == "ratio":
        return Ratio()
    return Progressive()
