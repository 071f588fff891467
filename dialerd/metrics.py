"""Prometheus endpoint: the same figures as the MQTT campaign state.

Off by default and bound to loopback by default: the figures name campaigns
and agents, which is nobody's business outside the host. A private registry
keeps two daemons in one test process (or the demo) from colliding.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

#: the since-start counts of ``views.queue_state`` exported as counters
#: (``dialerd_queue_<name>_total``)
QUEUE_COUNTERS = {
    "offered": "Callers who reached the queue",
    "answered": "Callers connected to an agent",
    "answered_in_sl": "Callers connected within the service-level target",
    "abandoned": "Callers who hung up waiting, past the target (or on the way to an agent)",
    "abandoned_short": "Callers who hung up waiting, inside the target (not held against it)",
    "fallbacks": "Callers sent to the max-wait or no-agents fallback",
    "callbacks": "Callers who asked for a callback",
}


def _nan(x: float | None) -> float:
    return math.nan if x is None else float(x)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.agents = Gauge("dialerd_agents", "Agents by state", ["campaign", "state"], registry=r)
        self.lines = Gauge("dialerd_lines_in_use", "Live calls", ["campaign"], registry=r)
        self.dial_level = Gauge(
            "dialerd_dial_level", "Lines in use per logged-in agent", ["campaign"], registry=r
        )
        self.dials = Counter("dialerd_dials", "Calls originated", ["campaign"], registry=r)
        self.outcomes = Counter(
            "dialerd_outcomes", "Attempts ended, by outcome", ["campaign", "outcome"], registry=r
        )
        self.abandon_rate = Gauge(
            "dialerd_abandon_rate",
            "Abandoned / live-answered since start",
            ["campaign"],
            registry=r,
        )
        self.ami_up = Gauge("dialerd_ami_up", "1 while AMI is logged in", registry=r)
        self.paused = Gauge("dialerd_campaign_paused", "1 while paused", ["campaign"], registry=r)
        self.degraded = Gauge(
            "dialerd_campaign_degraded",
            "1 while the campaign places no call because the store cannot record",
            ["campaign"],
            registry=r,
        )
        self.store_up = Gauge(
            "dialerd_store_up", "1 while the store records (0: degraded, no new calls)", registry=r
        )
        self.store_up.set(1)
        self.store_pending = Gauge(
            "dialerd_store_pending_writes", "Writes owed to the store (retried)", registry=r
        )
        self.store_failures = Counter(
            "dialerd_store_failures",
            "Failed store operations, by operation (each retry counts)",
            ["op"],
            registry=r,
        )
        self.core_errors = Counter(
            "dialerd_core_errors",
            "Events the core task failed on (logged, skipped), by event type",
            ["event"],
            registry=r,
        )
        self.login_failures = Counter(
            "dialerd_login_failures",
            "Phone logins refused: wrong PIN or unknown agent id",
            ["reason"],
            registry=r,
        )
        self.login_bursts = Counter(
            "dialerd_login_bursts", "Bursts of wrong PINs (alert on any increase)", registry=r
        )
        # inbound queues: gauges of the live state and today's rates, and
        # counters of callers since the start (``increase()`` gives any
        # window, a day included; today's counts reset, counters must not)
        self.queue_waiting = Gauge(
            "dialerd_queue_waiting", "Callers waiting for an agent", ["queue"], registry=r
        )
        self.queue_longest_wait = Gauge(
            "dialerd_queue_longest_wait_seconds",
            "How long the oldest waiting caller has waited (0: nobody waits)",
            ["queue"],
            registry=r,
        )
        self.queue_service_level = Gauge(
            "dialerd_queue_service_level",
            "Answered within the target / callers counted, today (NaN before the first)",
            ["queue"],
            registry=r,
        )
        self.queue_target = Gauge(
            "dialerd_queue_service_level_target",
            "The queue's service-level target (percent / 100)",
            ["queue"],
            registry=r,
        )
        self.queue_asa = Gauge(
            "dialerd_queue_asa_seconds",
            "Average speed of answer today (NaN before the first answer)",
            ["queue"],
            registry=r,
        )
        self.queue_arrivals = Gauge(
            "dialerd_queue_arrivals_per_minute",
            "Estimated arrival rate of callers",
            ["queue"],
            registry=r,
        )
        self.queue_agents = Gauge(
            "dialerd_queue_agents",
            "Logged-in agents who answer the queue, by state",
            ["queue", "state"],
            registry=r,
        )
        self.queue_enabled = Gauge(
            "dialerd_queue_enabled", "1 while the queue takes callers", ["queue"], registry=r
        )
        self.queue_callers = {
            k: Counter(f"dialerd_queue_{k}", help_, ["queue"], registry=r)
            for k, help_ in QUEUE_COUNTERS.items()
        }
        self.queue_answer_wait = Counter(
            "dialerd_queue_answer_wait_seconds",
            "Sum of the waits of answered callers (ASA over a window: its increase / answered's)",
            ["queue"],
            registry=r,
        )
        #: the since-start figures last seen, per (queue, figure): counters
        #: move by the difference
        self._queue_seen: dict[tuple[str, str], float] = {}
        self._server: Any = None

    def serve(self, host: str, port: int) -> Any:
        """Serve ``/metrics`` from a thread of its own (prometheus_client's);
        returns what prometheus_client returns (the server and its thread)."""
        served = start_http_server(port, addr=host, registry=self.registry)
        self._server = served[0] if isinstance(served, tuple) else None
        return served

    async def stop(self) -> None:
        """Free the port, so a daemon started again in the same process
        (tests, the demo) can bind it. Off the event loop: the server's
        shutdown waits for its polling thread."""
        server, self._server = self._server, None
        if server is not None:
            await asyncio.to_thread(server.shutdown)
            server.server_close()

    def campaign_state(self, name: str, state: dict[str, Any]) -> None:
        for st in ("ready", "talking", "wrap", "paused", "preview"):
            self.agents.labels(name, st).set(state["agents"][st])
        self.lines.labels(name).set(state["lines_in_use"])
        self.dial_level.labels(name).set(state["dial_level"])
        self.abandon_rate.labels(name).set(state["abandon_rate"])
        self.paused.labels(name).set(1 if state["paused"] else 0)
        self.degraded.labels(name).set(1 if state.get("degraded") else 0)

    def queue_state(self, name: str, state: dict[str, Any]) -> None:
        """One queue's figures (``views.queue_state``)."""
        self.queue_waiting.labels(name).set(state["waiting"])
        self.queue_longest_wait.labels(name).set(state["longest_wait_s"])
        self.queue_service_level.labels(name).set(_nan(state["service_level"]))
        self.queue_target.labels(name).set(state["target"]["percent"] / 100.0)
        self.queue_asa.labels(name).set(_nan(state["asa_s"]))
        self.queue_arrivals.labels(name).set(state["arrivals_per_min"])
        self.queue_enabled.labels(name).set(1 if state["enabled"] else 0)
        for st in ("logged_in", "ready", "talking", "on_queue"):
            self.queue_agents.labels(name, st).set(state["agents"][st])
        since = state["since_start"]
        for k, counter in self.queue_callers.items():
            self._advance(counter, name, k, since[k])
        self._advance(self.queue_answer_wait, name, "answer_wait_s", since["answer_wait_s"])

    def _advance(self, counter: Counter, name: str, figure: str, value: float) -> None:
        child = counter.labels(name)  # the series exists from the start, at 0
        seen = self._queue_seen.get((name, figure), 0.0)
        if value > seen:
            child.inc(value - seen)
            self._queue_seen[(name, figure)] = value
