"""Which core commands the outside world hears about over MQTT, and in what
shape: the payloads are a public interface (wallboards, CRMs subscribe to
them), so they are written out field by field here rather than dumped
from the commands, whose fields may change with the core."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dialerd.core import commands as cmd
from dialerd.mqtt.bridge import MqttBridge
from dialerd.store.api import PhoneLead


def publish_command(bridge: MqttBridge, c: cmd.Command) -> None:
    """Publish what ``c`` tells subscribers; most commands tell nothing."""
    match c:
        case cmd.PlaceCall():
            bridge.event(
                "attempt_started",
                attempt_id=c.attempt_id,
                campaign=c.campaign,
                lead_id=c.lead_id,
                at=c.started_at,
            )
        case cmd.RecordOutcome():
            bridge.event(
                "attempt_ended",
                attempt_id=c.attempt_id,
                campaign=c.campaign,
                lead_id=c.lead_id,
                outcome=c.outcome.value,
                agent=c.agent_id,
                lead_status=c.lead.status.value,
                at=c.ended_at,
            )
        case cmd.ScreenPop():
            pop = {
                "kind": c.kind,
                "agent": c.agent_id,
                "campaign": c.campaign,
                "attempt_id": c.attempt_id,
                "lead_id": c.lead.id,
                "phone": c.lead.phone,
                "attempts": c.lead.attempts,
                "timezone": c.lead.timezone,
                "fields": c.lead.fields,
                "at": c.at,
            }
            bridge.publish(f"agent/{c.agent_id}/screenpop", pop)
        case cmd.AgentAction():
            bridge.event(
                "agent_action",
                agent=c.agent_id,
                campaign=c.campaign,
                action=c.action,
                detail=c.detail,
                ok=c.ok,
                at=c.at,
            )
        case cmd.AgentStateChanged():
            state = {
                "agent": c.agent_id,
                "campaign": c.campaign,
                "state": c.state,
                "since": c.at,
                "reason": c.reason or None,
            }
            bridge.publish(f"agent/{c.agent_id}/state", state, retain=True)
            bridge.event("agent_state", **state)


def publish_inbound_pop(
    bridge: MqttBridge, c: cmd.InboundPop, leads: Sequence[PhoneLead], error: str | None = None
) -> None:
    """An inbound caller for the agent's desktop (``agent/<id>/screenpop``,
    kind ``inbound``): who calls, on which number and queue, how long they
    waited, and the leads the store holds for their number (any campaign),
    each with its last attempt. ``leads_error``: the store could not say."""
    pop: dict[str, Any] = {
        "kind": "inbound",
        "agent": c.agent_id,
        "call_id": c.call_id,
        "queue": c.queue,
        "caller": c.caller or None,
        "did": c.did,
        "waited_s": c.waited_s,
        "at": c.at,
        "leads": [_pop_lead(p) for p in leads],
        "leads_error": error,
    }
    bridge.publish(f"agent/{c.agent_id}/screenpop", pop)


def _pop_lead(p: PhoneLead) -> dict[str, Any]:
    ld, a = p.lead, p.last_attempt
    return {
        "lead_id": ld.id,
        "campaign": ld.campaign,
        "phone": ld.phone,
        "status": ld.status.value,
        "attempts": ld.attempts,
        "timezone": ld.timezone,
        "fields": ld.fields,
        "last_outcome": ld.last_outcome,
        "last_attempt": None
        if a is None
        else {
            "attempt_id": a.id,
            "outcome": a.outcome,
            "disposition": a.disposition,
            "agent": a.agent_id,
            "started_at": a.started_at,
            "ended_at": a.ended_at,
        },
    }
