"""Inbound demand as the outbound pacing sees it: how many agents the
callers of the queues will claim over the next call's horizon.

Why an exponentially weighted rate rather than a count over a fixed window:
it is one float and a timestamp per queue (a decision costs the same at any
traffic), it forgets smoothly (a morning peak is followed within minutes,
not in a step when the window slides past it), and for a steady Poisson
stream its mean is the true rate. ``tau_s`` trades noise for lag: with 1.5
calls a minute, 600 s averages over about 15 arrivals.

Pure: no clock, no I/O; times are given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(slots=True)
class ArrivalRate:
    """Arrivals per second, exponentially weighted with time constant
    ``tau_s``. Before ``warm_s`` of observation the estimate is scaled up
    to the time seen (a cold start neither ignores the first callers nor
    mistakes one caller for a flood)."""

    tau_s: float = 600.0
    warm_s: float = 120.0
    _level: float = 0.0
    _at: float | None = None
    _since: float | None = None

    def start(self, now: float) -> None:
        """Observation begins (the queue is loaded)."""
        if self._since is None:
            self._since = now
            self._at = now

    def arrived(self, now: float) -> None:
        self.start(now)
        self._level = self._decayed(now) + 1.0 / self.tau_s
        self._at = now

    def _decayed(self, now: float) -> float:
        if self._at is None:
            return 0.0
        return self._level * math.exp(-max(now - self._at, 0.0) / self.tau_s)

    def rate(self, now: float) -> float:
        """Arrivals per second expected now."""
        if self._since is None:
            return 0.0
        seen = max(now - self._since, 0.0)
        level = self._decayed(now)
        # the weights of a window of length ``seen`` sum to 1 - e^(-seen/tau):
        # divide by it so a young estimate is not biased low
        norm = 1.0 - math.exp(-max(seen, self.warm_s) / self.tau_s)
        return level / norm if norm > 0 else 0.0


def erlang_c(agents: int, load: float) -> float:
    """Probability that a caller waits (Erlang C), ``load`` in Erlangs
    (arrival rate x mean handling time). 1 when the agents cannot keep up."""
    if agents <= 0 or load >= agents:
        return 1.0
    if load <= 0:
        return 0.0
    # Erlang B by its stable recursion, then C from B
    b = 1.0
    for k in range(1, agents + 1):
        b = load * b / (k + load * b)
    return b / (1.0 - (load / agents) * (1.0 - b))


def service_level(agents: int, rate: float, handle_s: float, within_s: float) -> float:
    """Share of callers answered within ``within_s`` with ``agents`` serving
    a Poisson stream of ``rate``/s and exponential handling of mean
    ``handle_s`` (the M/M/c formula)."""
    load = rate * handle_s
    if agents <= load:
        return 0.0
    pw = erlang_c(agents, load)
    return 1.0 - pw * math.exp(-(agents - load) * within_s / handle_s)


def agents_for(rate: float, handle_s: float, within_s: float, percent: float) -> int:
    """The fewest agents that meet ``percent``% within ``within_s`` by
    Erlang C (0 with no traffic)."""
    if rate <= 0:
        return 0
    n = max(1, math.ceil(rate * handle_s))
    while service_level(n, rate, handle_s, within_s) < percent / 100.0:
        n += 1
    return n
