"""Prometheus endpoint: the same figures as the MQTT campaign state.

Off by default and bound to loopback by default: the figures name campaigns
and agents, which is nobody's business outside the host. A private registry
keeps two daemons in one test process (or the demo) from colliding.
"""

from __future__ import annotations

import asyncio
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server


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
