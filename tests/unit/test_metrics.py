"""The Prometheus endpoint serves the campaign figures over real HTTP."""

from __future__ import annotations

import socket
import urllib.request

from dialerd.metrics import Metrics


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_metrics_endpoint_serves_campaign_state() -> None:
    m = Metrics()
    port = _free_port()
    server = m.serve("127.0.0.1", port)
    try:
        m.campaign_state(
            "sales",
            {
                "agents": {"ready": 2, "talking": 5, "wrap": 1, "paused": 1, "preview": 3},
                "lines_in_use": 9,
                "dial_level": 1.5,
                "abandon_rate": 0.0125,
                "paused": False,
            },
        )
        m.dials.labels("sales").inc(3)
        m.outcomes.labels("sales", "busy").inc()
        m.ami_up.set(1)
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
        text = body.decode()
    finally:
        server[0].shutdown() if isinstance(server, tuple) else None
    assert 'dialerd_agents{campaign="sales",state="talking"} 5.0' in text
    assert 'dialerd_agents{campaign="sales",state="preview"} 3.0' in text
    assert 'dialerd_lines_in_use{campaign="sales"} 9.0' in text
    assert 'dialerd_abandon_rate{campaign="sales"} 0.0125' in text
    assert 'dialerd_dials_total{campaign="sales"} 3.0' in text
    assert 'dialerd_outcomes_total{campaign="sales",outcome="busy"} 1.0' in text
    assert "dialerd_ami_up 1.0" in text
