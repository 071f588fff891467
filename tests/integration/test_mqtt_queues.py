"""The retained state of inbound queues, ``<prefix>/queue/<name>/state``,
through the real bridge to a real Mosquitto: the daemon's supervisor on a
bare shell whose core is fed ``QueuesLoaded`` and callers directly (the
inbound dialplan is not needed for the publish path). Published when a
caller changes the queue (``Supervisor.observe``, as the daemon's loop calls
it after each event), not again for an event that changes nothing, and kept
by the broker for a screen that connects later."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiomqtt
from mqtt_harness import PREFIX, bridge_world

from dialerd.core import events as ev
from dialerd.core.testing import queue

TOPIC = f"{PREFIX}/queue/q1/state"


async def test_queue_state_is_published_on_change_and_retained(mqtt_broker: Any) -> None:
    async with bridge_world(mqtt_broker) as w:
        await w.client.subscribe(f"{PREFIX}/queue/+/state", qos=1)
        sup, core = w.sup, w.sup.shell.core

        def feed(e: ev.Event) -> None:
            core.handle(e)
            sup.observe(e)

        def arrive(cid: str) -> None:
            feed(ev.InboundArrived(100.0, cid, "q1", f"PJSIP/trunk-{cid}", "+442079460001",
                                   "+442071234567"))  # fmt: skip

        feed(ev.QueuesLoaded(100.0, (queue(),)))
        first = await w.next(lambda m: m.topic == TOPIC)
        assert first.json()["offered"] == 0 and first.json()["waiting"] == 0

        arrive("in-1")  # agent 1001 is ready: the caller goes to them
        m = await w.next(lambda m: m.topic == TOPIC)
        assert (m.json()["offered"], m.json()["waiting"]) == (1, 0)
        assert m.json()["agents"]["on_queue"] == 1
        arrive("in-2")  # nobody free: waits
        m = await w.next(lambda m: m.topic == TOPIC)
        assert (m.json()["offered"], m.json()["waiting"]) == (2, 1)

        # an event that changes no queue publishes no queue state
        feed(ev.Tick(100.0))
        before_reply = await w.ping()
        assert [x for x in before_reply if x.topic == TOPIC] == []

        # the state timer republishes every queue (the caller's wait grows)
        sup.shell.clock = lambda: 107.0
        sup.publish_state()
        m = await w.next(lambda m: m.topic == TOPIC)
        assert m.json()["longest_wait_s"] == 7.0 and m.json()["at"] == 107.0

        # a screen that connects later gets the last state, retained
        async with aiomqtt.Client(mqtt_broker.host, mqtt_broker.port, identifier="wallboard") as c:
            await c.subscribe(TOPIC, qos=1)
            late = await asyncio.wait_for(anext(aiter(c.messages)), 5)
            assert late.retain
            payload = late.payload if isinstance(late.payload, bytes) else b""
            state = json.loads(payload)
            assert state["queue"] == "q1" and state["waiting"] == 1
            assert state["longest_wait_s"] == 7.0
            assert state["target"] == {"percent": 80, "within_s": 20}
            assert set(state["since_start"]) >= {"offered", "answered", "abandoned"}
