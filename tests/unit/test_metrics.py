"""The Prometheus endpoint serves the campaign figures over real HTTP."""

from __future__ import annotations

import socket
import urllib.request

from prometheus_client import generate_latest

from dialerd.core import views
from dialerd.core.testing import CoreHarness, campaign, queue
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


def test_queue_metrics_follow_the_queue_state() -> None:
    """Gauges of the live state, counters of the callers since the start
    (moved by the difference at each publish, never twice)."""
    w = CoreHarness(campaign(dial_mode="progressive"))
    w.queues(queue())
    m = Metrics()

    def scrape() -> str:
        m.queue_state("q1", views.queue_state(w.core, "q1", w.now))
        return generate_latest(m.registry).decode()

    text = scrape()
    assert 'dialerd_queue_service_level{queue="q1"} NaN' in text  # nobody counted yet
    assert 'dialerd_queue_asa_seconds{queue="q1"} NaN' in text
    assert 'dialerd_queue_service_level_target{queue="q1"} 0.8' in text
    assert 'dialerd_queue_enabled{queue="q1"} 1.0' in text
    w.join("1001")
    w.arrive("in-1")
    w.at(4)
    w.connect("in-1", "1001")
    w.arrive("in-2")
    w.at(6)
    text = scrape()
    assert 'dialerd_queue_waiting{queue="q1"} 1.0' in text
    assert 'dialerd_queue_longest_wait_seconds{queue="q1"} 6.0' in text
    assert 'dialerd_queue_agents{queue="q1",state="talking"} 1.0' in text
    assert 'dialerd_queue_agents{queue="q1",state="on_queue"} 1.0' in text
    assert 'dialerd_queue_service_level{queue="q1"} 1.0' in text
    assert 'dialerd_queue_asa_seconds{queue="q1"} 4.0' in text
    assert 'dialerd_queue_offered_total{queue="q1"} 2.0' in text
    assert 'dialerd_queue_answered_total{queue="q1"} 1.0' in text
    assert 'dialerd_queue_answer_wait_seconds_total{queue="q1"} 4.0' in text
    w.at(30)
    w.hang_up("in-2")  # waited 36 s: past the 20 s target
    text = scrape()
    text = scrape()  # published twice: the counters move once
    assert 'dialerd_queue_offered_total{queue="q1"} 2.0' in text
    assert 'dialerd_queue_abandoned_total{queue="q1"} 1.0' in text
    assert 'dialerd_queue_abandoned_short_total{queue="q1"} 0.0' in text
    assert 'dialerd_queue_service_level{queue="q1"} 0.5' in text
    assert 'dialerd_queue_waiting{queue="q1"} 0.0' in text
    assert 'dialerd_queue_arrivals_per_minute{queue="q1"}' in text
