"""Hostile supervisor commands against the real bridge and the real
supervisor handler on a real Mosquitto (issue 12): each gets an error reply
and the bridge goes on answering and publishing; a reply never lands
outside ``<prefix>/reply/``; a bridge that fails anyway restarts itself."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from mqtt_harness import PREFIX, World, bridge_world

P = PREFIX

#: each killed the bridge for good before issue 12
KILLERS: list[tuple[bytes, str]] = [
    (
        b'{"command": "set_dial_level", "campaign": "c1", "max_level": 1' + b"0" * 400 + b"}",
        "integer longer than 30 digits",
    ),
    (b'{"command": "resume", "campaign": "c1", "reply_to": "dd/reply/\\ud800"}', "surrogate"),
    (b"[" * 100_000, "too large"),
    (b"[" * 2000, "nested deeper"),
]


@pytest.mark.parametrize(
    ("payload", "error"), KILLERS, ids=["400-digits", "surrogate", "deep", "deep-small"]
)
async def test_a_hostile_command_gets_an_error_and_the_bridge_lives(
    mqtt_broker: Any, payload: bytes, error: str
) -> None:
    async with bridge_world(mqtt_broker) as w:
        await w.send(payload)
        reply = await w.next(lambda m: m.topic == f"{P}/reply", 5)
        assert reply.json()["ok"] is False and error in reply.json()["error"]
        await w.ping()
        await w.state_goes_out()
        assert w.sup.shell.queue.qsize() == 1  # the ping's resume only


@pytest.mark.parametrize(
    "payload",
    [
        b'{"command": "set_dial_level", "campaign": "c1", "max_level": NaN}',
        b'{"command": "set_dial_level", "campaign": "c1", "max_level": Infinity}',
        b'{"command": "set_dial_level", "campaign": "c1", "max_level": 1e999}',
        b'{"command": "set_dial_level", "campaign": "c1", "max_level": true}',
        b'{"command": "pause", "campaign": "c1", "reason": "' + b"x" * 60_000 + b'"}',
        b'{"command": "pause", "campaign": "c1", "reason": "a\\nb"}',
        b'{"command": "pause", "campaign": "c1", "request_id": "' + b"r" * 1000 + b'"}',
        b'{"command": "pause", "campaign": "\xff"}',
        b"\x00\x01\x02",
        b"",
        b'"pause"',
        b"[]",
    ],
    ids=lambda p: repr(p[:30]),
)
async def test_bad_values_are_refused_and_nothing_is_queued(
    mqtt_broker: Any, payload: bytes
) -> None:
    async with bridge_world(mqtt_broker) as w:
        await w.send(payload)
        reply = await w.next(lambda m: m.topic == f"{P}/reply", 5)
        assert reply.json()["ok"] is False
        assert len(reply.payload) < 300
        assert w.sup.shell.queue.empty()
        await w.ping()


@pytest.mark.parametrize(
    "reply_to",
    [
        f"{P}/agent/1001/screenpop",
        f"{P}/agent/1001/state",
        f"{P}/status",
        f"{P}/cmd",
        f"{P}/campaign/c1/state",
        f"{P}/reply",  # the default topic itself: leave reply_to out instead
        f"{P}/replyx/a",
        f"{P}/reply/+",
        f"{P}/reply/#",
        f"{P}/reply/" + "x" * 200,
        f"{P}/reply/a\x00b",
        "sup/replies",
        "",
        42,
        ["dd/reply/x"],
    ],
    ids=lambda r: repr(r)[:30],
)
async def test_a_reply_only_goes_under_the_reply_tree(mqtt_broker: Any, reply_to: Any) -> None:
    """``reply_to: dialerd/agent/1001/screenpop`` made the daemon publish
    attacker-chosen JSON onto an agent's screen-pop topic."""
    async with bridge_world(mqtt_broker) as w:
        await w.send(
            json.dumps(
                {"command": "pause", "campaign": "c1", "reply_to": reply_to, "request_id": "evil"}
            )
        )
        reply = await w.next(lambda m: m.topic.startswith(f"{P}/reply"), 5)
        assert reply.topic == f"{P}/reply"
        assert reply.json() == {
            "ok": False,
            "error": f"reply_to must be a topic under {P}/reply/ (at most 128 bytes, no wildcards)",
            "request_id": "evil",
        }
        assert w.sup.shell.queue.empty(), "a refused command changed nothing"
        await w.ping()
        await asyncio.sleep(0.2)
        stray = [m for m in w.seen if not m.topic.startswith(f"{P}/reply")]
        assert [m.topic for m in stray if m.topic != f"{P}/status"] == [], stray


async def test_a_reply_under_the_reply_tree_is_sent_there(mqtt_broker: Any) -> None:
    async with bridge_world(mqtt_broker) as w:
        await w.send(
            json.dumps(
                {
                    "command": "pause",
                    "campaign": "c1",
                    "reply_to": f"{P}/reply/sup-7/x",
                    "request_id": 7,
                }
            )
        )
        reply = await w.next(lambda m: m.topic == f"{P}/reply/sup-7/x", 5)
        assert reply.json() == {"ok": True, "command": "pause", "campaign": "c1", "request_id": 7}


def _restarts(w: World) -> float:
    v = w.bridge.registry.get_sample_value("dialerd_mqtt_bridge_restarts_total")
    return 0.0 if v is None else v


async def test_a_bridge_that_fails_anyway_restarts_and_says_so(mqtt_broker: Any) -> None:
    """A failure outside the command guard (here an item the client cannot
    send, put straight on the outgoing queue) used to end the sender for
    good: no state went out again. Now the bridge goes offline, restarts
    with backoff, counts it, and comes back online."""
    async with bridge_world(mqtt_broker) as w:
        await w.next(lambda m: m.topic == f"{P}/status" and m.payload == b"online", 5)
        w.bridge._queue.put_nowait((f"{P}/events", object(), False))  # type: ignore[arg-type]
        await w.next(lambda m: m.topic == f"{P}/status" and m.payload == b"offline", 5)
        await w.next(lambda m: m.topic == f"{P}/status" and m.payload == b"online", 10)
        assert _restarts(w) == 1
        assert w.bridge.restarts == 1
        await w.ping()
        await w.state_goes_out()


async def test_a_clean_stop_leaves_offline_retained(mqtt_broker: Any) -> None:
    """A clean disconnect sends no Will: the bridge stopped with ``online``
    retained for ever (the daemon looked alive after it exited)."""
    import aiomqtt

    async with bridge_world(mqtt_broker) as w:
        await w.next(lambda m: m.topic == f"{P}/status" and m.payload == b"online", 5)
    b = mqtt_broker
    async with aiomqtt.Client(b.host, b.port, identifier="after") as c:
        await c.subscribe(f"{P}/status")
        msg = await asyncio.wait_for(anext(aiter(c.messages)), 5)
        assert msg.payload == b"offline"


async def test_an_unpublishable_payload_is_dropped_not_raised(mqtt_broker: Any) -> None:
    async with bridge_world(mqtt_broker) as w:
        cyclic: list[Any] = []
        cyclic.append(cyclic)
        w.bridge.publish("events", {"x": float("nan")})  # not JSON: dropped
        w.bridge.publish("events", cyclic)
        await w.ping()
        await w.state_goes_out()
        assert w.bridge.restarts == 0
