"""Which core commands the outside world hears about over MQTT, and in what
shape: the payloads are a public interface (wallboards, CRMs subscribe to
them), so they are written out field by field here rather than dumped
from the commands, whose fields may change with the core."""

from __future__ import annotations

from dialerd.core import commands as cmd
from dialerd.mqtt.bridge import MqttBridge


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
