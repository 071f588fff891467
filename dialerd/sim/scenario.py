"""Simulation scenarios: a YAML file validated by pydantic (strict keys).

Schema (every key optional except where noted; times in seconds)::

    name: reference
    duration_s: 28800           # the shift
    seed: 1
    tick_s: 0.2                 # the daemon's Tick period (settings.tick_s)
    agents:
      count: 100                # required
      login_spread_s: 30        # agents log in uniformly over the first N s
      breaks: 0                 # breaks per agent per shift (logout, then back)
      break_s: 900
      preview_think_s: 4        # preview mode: seconds to read a lead, then '*#'
    customers:
      answer_rate: 0.30         # share of dials a person answers
      answer_rate_schedule:     # optional: [time_s, rate] points, linear between
        - [0, 0.30]
        - [28800, 0.15]
      busy_share: 0.0           # share of dials that are busy ...
      busy_after: {dist: uniform, low: 1, high: 4}
      congestion_share: 0.0     # ... congested (AMI reason 8) ...
      failed_share: 0.0         # ... failed (reason 0); the rest: no answer
      fail_after: {dist: uniform, low: 0.5, high: 3}
      machine_share: 0.0        # share of answers that are answering machines
      machine_s: {dist: uniform, low: 3, high: 10}  # agent time on a machine
      time_to_answer: {dist: uniform, low: 4, high: 18}
    talk: {dist: lognormal, mean: 180, cv: 0.8}
    wrap_s: 10                  # the campaign's wrap_up_s
    ring_timeout_s: 25
    lines: null                 # trunk channel limit (null: not limiting)
    safe_harbor_s: 8            # length of the safe-harbor message
    redirect_latency_s: 0.05
    campaign: {}                # extra campaign fields (pacing: {...}, ...)
    inbound:                    # optional: blended (see dialerd.sim.inbound)
      queues:
        - name: support
          dids: ["+442071230000"]
          calls_per_min: 1.5            # Poisson arrivals ...
          hourly_calls_per_min: [1, 2]  # ... or one rate per hour of the shift
          patience: {dist: exponential, mean: 150}  # a caller hangs up after
          talk: {dist: lognormal, mean: 210, cv: 0.7}
          service_level: {percent: 80, within_s: 20}
          max_wait_s: 120
          after_max_wait: callback      # or message
          callback_accept: 0.5          # share of offers taken (press 1)
          callback_due_s: 1800          # the callback lead is due this much later
          withheld_share: 0.05          # callers with no number to call back
          fallback_s: {dist: uniform, low: 6, high: 12}  # offer or message, then gone

Distributions: ``{dist: fixed, value}``, ``{dist: uniform, low, high}``,
``{dist: exponential, mean}``, ``{dist: lognormal, mean, cv}``,
``{dist: gamma, mean, cv}``.
"""

from __future__ import annotations

import itertools
import math
import random
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from dialerd.campaign.queues import ServiceLevel


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Dist(_Strict):
    dist: Literal["fixed", "uniform", "exponential", "lognormal", "gamma"]
    value: float | None = None
    low: float | None = None
    high: float | None = None
    mean: float | None = None
    cv: float | None = None

    @model_validator(mode="after")
    def _params(self) -> Dist:
        need = {
            "fixed": ("value",),
            "uniform": ("low", "high"),
            "exponential": ("mean",),
            "lognormal": ("mean", "cv"),
            "gamma": ("mean", "cv"),
        }[self.dist]
        for k in need:
            v = getattr(self, k)
            if v is None or v < 0:
                raise ValueError(f"{self.dist} needs {k} >= 0")
        if self.dist == "uniform" and (self.high or 0) < (self.low or 0):
            raise ValueError("uniform needs low <= high")
        if self.dist in ("lognormal", "gamma") and not (self.cv or 0) > 0:
            raise ValueError(f"{self.dist} needs cv > 0")
        return self

    def sampler(self, rng: random.Random) -> Any:
        """A zero-argument function drawing from ``rng``."""
        d = self.dist
        if d == "fixed":
            v = float(self.value or 0.0)
            return lambda: v
        if d == "uniform":
            lo, hi = float(self.low or 0.0), float(self.high or 0.0)
            return lambda: rng.uniform(lo, hi)
        if d == "exponential":
            m = float(self.mean or 0.0)
            return lambda: rng.expovariate(1.0 / m) if m > 0 else 0.0
        m, cv = float(self.mean or 0.0), float(self.cv or 0.0)
        if d == "lognormal":
            s2 = math.log(1.0 + cv * cv)
            mu, sg = math.log(m) - s2 / 2.0, math.sqrt(s2)
            return lambda: rng.lognormvariate(mu, sg)
        k = 1.0 / (cv * cv)
        th = m / k
        return lambda: rng.gammavariate(k, th)

    def expected(self) -> float:
        if self.dist == "fixed":
            return float(self.value or 0.0)
        if self.dist == "uniform":
            return (float(self.low or 0.0) + float(self.high or 0.0)) / 2.0
        return float(self.mean or 0.0)


class Agents(_Strict):
    count: int = Field(ge=0, le=10000)
    login_spread_s: float = Field(default=30.0, ge=0, le=86400)
    breaks: int = Field(default=0, ge=0, le=20)
    break_s: float = Field(default=900.0, ge=0, le=86400)
    #: preview mode: an agent reads the offered lead this long, then accepts
    preview_think_s: float = Field(default=4.0, ge=0, le=600)


class Customers(_Strict):
    answer_rate: float = Field(default=0.30, ge=0, le=1)
    answer_rate_schedule: list[tuple[float, float]] | None = None
    busy_share: float = Field(default=0.0, ge=0, le=1)
    busy_after: Dist = Dist(dist="uniform", low=1, high=4)
    congestion_share: float = Field(default=0.0, ge=0, le=1)
    failed_share: float = Field(default=0.0, ge=0, le=1)
    fail_after: Dist = Dist(dist="uniform", low=0.5, high=3)
    machine_share: float = Field(default=0.0, ge=0, le=1)
    machine_s: Dist = Dist(dist="uniform", low=3, high=10)
    time_to_answer: Dist = Dist(dist="uniform", low=4, high=18)

    def rate_at(self, t: float) -> float:
        sch = self.answer_rate_schedule
        if not sch:
            return self.answer_rate
        if t <= sch[0][0]:
            return sch[0][1]
        for (t0, r0), (t1, r1) in itertools.pairwise(sch):
            if t <= t1:
                return r0 + (r1 - r0) * (t - t0) / (t1 - t0) if t1 > t0 else r1
        return sch[-1][1]

    def mean_rate(self, duration: float) -> float:
        if not self.answer_rate_schedule:
            return self.answer_rate
        n = 200
        return sum(self.rate_at(duration * (i + 0.5) / n) for i in range(n)) / n


class InboundQueue(_Strict):
    """One inbound queue of a blended scenario (its callers and its target).
    The simulator builds the real ``dialerd.campaign.queues.Queue`` from it."""

    name: str = "support"
    dids: list[str] = Field(default_factory=lambda: ["+442071230000"], min_length=1)
    #: Poisson arrivals, calls per minute, all shift ...
    calls_per_min: float = Field(default=1.0, ge=0, le=10000)
    #: ... or one rate per hour of the shift (the last one holds after)
    hourly_calls_per_min: list[float] | None = None
    #: how long a caller waits before hanging up (an inbound abandon)
    patience: Dist = Dist(dist="exponential", mean=150)
    talk: Dist = Dist(dist="lognormal", mean=210, cv=0.7)
    service_level: ServiceLevel = ServiceLevel(percent=80, within_s=20)
    max_wait_s: int = Field(default=120, ge=5, le=3600)
    priority: int = Field(default=0, ge=0, le=100)
    after_max_wait: Literal["callback", "message"] = "callback"
    #: share of the callers offered a callback who press 1
    callback_accept: float = Field(default=0.5, ge=0, le=1)
    #: the callback lead is due this long after the request
    callback_due_s: float = Field(default=1800.0, ge=0)
    #: callers with a withheld number (no callback possible)
    withheld_share: float = Field(default=0.05, ge=0, le=1)
    #: the fallback (offer, or message) lasts this long, then the caller is gone
    fallback_s: Dist = Dist(dist="uniform", low=6, high=12)

    @model_validator(mode="after")
    def _wait(self) -> InboundQueue:
        if self.max_wait_s < self.service_level.within_s:
            raise ValueError("max_wait_s is shorter than service_level_within_s")
        for r in self.hourly_calls_per_min or ():
            if r < 0:
                raise ValueError("hourly_calls_per_min: rates >= 0")
        return self

    def rate_per_min(self, t: float) -> float:
        """Calls per minute at ``t`` seconds into the shift."""
        h = self.hourly_calls_per_min
        if not h:
            return self.calls_per_min
        return h[min(max(int(t // 3600.0), 0), len(h) - 1)]

    def mean_rate_per_min(self, duration: float) -> float:
        if not self.hourly_calls_per_min:
            return self.calls_per_min
        n = max(1, math.ceil(duration / 3600.0))
        total = 0.0
        for i in range(n):
            span = min(3600.0, duration - i * 3600.0)
            total += self.rate_per_min(i * 3600.0) * span
        return total / duration


class Inbound(_Strict):
    queues: list[InboundQueue] = Field(min_length=1)

    @model_validator(mode="after")
    def _names(self) -> Inbound:
        names = [q.name for q in self.queues]
        if len(set(names)) != len(names):
            raise ValueError("inbound queue names repeat")
        dids = [d for q in self.queues for d in q.dids]
        if len(set(dids)) != len(dids):
            raise ValueError("a DID belongs to one queue")
        return self


class Scenario(_Strict):
    name: str = "scenario"
    description: str = ""
    duration_s: float = Field(default=28800.0, gt=0, le=31 * 86400)
    seed: int = 1
    tick_s: float = Field(default=0.2, gt=0, le=5)
    agents: Agents
    customers: Customers = Customers()
    talk: Dist = Dist(dist="lognormal", mean=180, cv=0.8)
    wrap_s: float = Field(default=10.0, ge=0, le=3600)
    ring_timeout_s: int = Field(default=25, ge=5, le=120)
    lines: int | None = Field(default=None, ge=1)
    safe_harbor_s: float = Field(default=8.0, ge=0)
    redirect_latency_s: float = Field(default=0.05, ge=0, le=1.0)
    campaign: dict[str, Any] = Field(default_factory=dict)
    #: blended: inbound queues answered by the same agents (None: outbound only)
    inbound: Inbound | None = None

    @model_validator(mode="after")
    def _shares(self) -> Scenario:
        c = self.customers
        top = max([c.answer_rate] + [r for _, r in (c.answer_rate_schedule or [])])
        if top + c.busy_share + c.congestion_share + c.failed_share > 1.0 + 1e-9:
            raise ValueError("answer + busy + congestion + failed shares exceed 1")
        return self

    def with_agents(self, n: int) -> Scenario:
        return self.model_copy(update={"agents": self.agents.model_copy(update={"count": n})})

    def physical_limit(self) -> tuple[float, bool]:
        """(share of logged-in time an oracle could keep agents talking, limited
        by lines?). Machines (no AMD) cost agent time the oracle cannot avoid.

        Blended (``inbound``): the oracle answers every inbound caller at
        once (their load is given: arrivals x (inbound talk + wrap), over
        the shift's mean rate, at most all the agents' time) and fills every
        other minute with outbound calls at the outbound limit. So the limit
        is ``u x talk_in / (talk_in + wrap) + (1 - u) x outbound limit``,
        ``u`` the share of agent time inbound calls take. Callers who hang
        up before an agent answers are counted as answered (the oracle has
        no queue), so the limit is a bound, not a forecast."""
        talk = self.talk.expected()
        m = self.customers.machine_share
        mt = self.customers.machine_s.expected()
        per_call = (1 - m) * (talk + self.wrap_s) + m * (mt + self.wrap_s)
        lim = (1 - m) * talk / per_call if per_call > 0 else 0.0
        if self.inbound is not None and self.agents.count > 0:
            u = 0.0
            t_in = 0.0
            for q in self.inbound.queues:
                tq = q.talk.expected()
                load = q.mean_rate_per_min(self.duration_s) / 60.0 * (tq + self.wrap_s)
                u += load
                t_in += load * (tq / (tq + self.wrap_s) if tq + self.wrap_s > 0 else 0.0)
            u /= self.agents.count
            t_in /= self.agents.count
            if u >= 1.0:
                return t_in / u, False
            lim = t_in + (1.0 - u) * lim
        if self.lines is not None and self.agents.count > 0:
            # the oracle dials only numbers that answer, each holding a line
            # from dial to hang-up
            tta = self.customers.time_to_answer.expected()
            hold = (1 - m) * (talk + tta) + m * (mt + tta)
            line_lim = self.lines / self.agents.count * (1 - m) * talk / hold
            if line_lim < lim:
                return line_lim, True
        return lim, False


def load_scenario(path: str | Path) -> Scenario:
    data = yaml.safe_load(Path(path).read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a scenario is a YAML mapping")
    return Scenario.model_validate(data)
