"""Limits on wrong PINs: per phone, per agent id and overall, with delays
that grow with each failure. Pure: the counters come in, the verdict and the
new counters go out, ``now`` is given; the daemon keeps the counters in the
store, so a restart forgets nothing.

Each counter is a leaky bucket: a failure adds 1, the level drains by 1 per
``leak_s``. Up to ``free`` failures cost nothing; past that, the next try is
allowed only ``base_s * 2 ** (level - free - 1)`` seconds (at most
``max_s``) after the last failure.

Which counters apply, and why (the lockout must not become a way to keep an
agent out):

- the **phone**'s counter applies to every try from it, and bites first
  (3 free, then 30 s, 1 min, 2 min ... up to 1 h, draining 1 an hour): one
  phone gets about 30 guesses a day, over all agent ids together, against
  about 9,700 before;
- the **agent id**'s and the **overall** counters apply only to a phone the
  agent has not logged in from before (a *known* phone: a success there in
  the last ``KNOWN_PHONE_S``). They stop many phones guessing one agent (or
  everyone) at once, but someone failing on purpose against agent 1001
  from other phones cannot keep 1001 out at their own desk: there only the
  phone's own counter counts, and a success resets it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from enum import StrEnum


@dataclass(frozen=True, slots=True)
class Limit:
    free: int
    base_s: float
    max_s: float
    #: the level drains by one failure per this many seconds
    leak_s: float


class Scope(StrEnum):
    PHONE = "phone"
    AGENT = "agent"
    ALL = "all"


LIMITS: dict[Scope, Limit] = {
    Scope.PHONE: Limit(free=3, base_s=30.0, max_s=3600.0, leak_s=3600.0),
    Scope.AGENT: Limit(free=5, base_s=60.0, max_s=3600.0, leak_s=3600.0),
    Scope.ALL: Limit(free=20, base_s=5.0, max_s=300.0, leak_s=60.0),
}
#: a phone an agent logged in from within this long is theirs
KNOWN_PHONE_S = 90 * 86400.0
#: the overall level at which a burst is reported, then at each doubling
BURST_AT = 10
#: the key of the one overall counter
ALL_KEY = "*"


@dataclass(frozen=True, slots=True)
class Counter:
    """One bucket: its level just after the last failure, and when."""

    level: float = 0.0
    last_at: float = 0.0

    def now_level(self, limit: Limit, now: float) -> float:
        return max(0.0, self.level - max(0.0, now - self.last_at) / limit.leak_s)

    def allowed_at(self, limit: Limit) -> float:
        # a level drained a little since its last failure still counts whole:
        # waiting out one delay exactly must not hold the next at the same one
        over = math.ceil(self.level - 1e-6) - limit.free
        if over <= 0:
            return 0.0
        return self.last_at + min(limit.max_s, limit.base_s * float(2 ** (over - 1)))


@dataclass(frozen=True, slots=True)
class LoginState:
    """The counters one try is judged by (``known``: the agent logged in
    from this phone before)."""

    phone: str
    agent_id: str
    known: bool = False
    counters: tuple[tuple[Scope, Counter], ...] = ()

    def counter(self, scope: Scope) -> Counter:
        return dict(self.counters).get(scope, Counter())

    def key(self, scope: Scope) -> str:
        return {Scope.PHONE: self.phone, Scope.AGENT: self.agent_id, Scope.ALL: ALL_KEY}[scope]

    def scopes(self) -> tuple[Scope, ...]:
        """The counters that apply to this try (see the module's doc)."""
        return (Scope.PHONE,) if self.known else (Scope.PHONE, Scope.AGENT, Scope.ALL)


@dataclass(frozen=True, slots=True)
class Wait:
    """Not now: retry after ``until``; ``scope`` says whose limit it is."""

    until: float
    scope: Scope


@dataclass(frozen=True, slots=True)
class Failed:
    """The counters after a wrong PIN, to store; ``burst``: the overall
    level reached ``BURST_AT`` or a doubling of it (alert once each)."""

    counters: tuple[tuple[Scope, str, Counter], ...]
    overall: int
    burst: bool


def check(state: LoginState, now: float) -> Wait | None:
    """None when a try may go ahead now, else the latest wait of those
    that apply."""
    worst: Wait | None = None
    for scope in state.scopes():
        until = state.counter(scope).allowed_at(LIMITS[scope])
        if until > now and (worst is None or until > worst.until):
            worst = Wait(until, scope)
    return worst


def failure(state: LoginState, now: float) -> Failed:
    """A wrong PIN (or an unknown agent id): every counter that applies goes
    up by one. The overall counter always counts (it is what a burst is
    measured on) even when it does not delay a known phone."""
    out: list[tuple[Scope, str, Counter]] = []
    scopes = set(state.scopes()) | {Scope.ALL}
    overall_before = overall_after = 0
    for scope in (Scope.PHONE, Scope.AGENT, Scope.ALL):
        if scope not in scopes:
            continue
        limit, c = LIMITS[scope], state.counter(scope)
        level = c.now_level(limit, now)
        new = replace(c, level=level + 1.0, last_at=now)
        out.append((scope, state.key(scope), new))
        if scope is Scope.ALL:
            overall_before, overall_after = math.floor(level + 1e-9), math.floor(level + 1 + 1e-9)
    burst = any(
        overall_before < mark <= overall_after for mark in (BURST_AT * 2**k for k in range(12))
    )
    return Failed(tuple(out), overall_after, burst)


def success(state: LoginState) -> tuple[tuple[Scope, str], ...]:
    """The counters a good PIN clears: the phone's and the agent's (the
    overall one drains on its own)."""
    return ((Scope.PHONE, state.phone), (Scope.AGENT, state.agent_id))
