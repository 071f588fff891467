"""Fuzz: random and hostile payloads published to ``<prefix>/cmd`` on a real
Mosquitto, handled by the real bridge and the real supervisor handler.

After every payload a valid command must still be answered (so the bridge
lives and has handled the payload), the payload must have had exactly one
reply under ``<prefix>/reply``, nothing may have been published anywhere
else, and nothing refused may have reached the core's queue. At the end the
bridge must still republish state, and must never have needed a restart.

Bounded for CI: 150 examples, one broker and one bridge for all of them.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mqtt_harness import PREFIX, World, bridge_world

P = PREFIX

# ------------------------------------------------------------ strategies

_hostile_strings = st.sampled_from(
    [
        "\ud800",
        "a\udfffb",
        "x" * 20_000,
        "\x00",
        "line\nbreak",
        "\u202e",
        f"{P}/agent/1001/screenpop",
        "#",
        "+",
    ]
)
_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from([10**400, -(10**400), 2**64, 10**29])
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(st.characters(exclude_categories=()), max_size=40)
    | _hostile_strings
)
_values = st.recursive(
    _scalars,
    lambda kids: (
        st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=6), kids, max_size=3)
    ),
    max_leaves=8,
)
_reply_to = (
    st.sampled_from(
        [
            f"{P}/agent/1001/screenpop",
            f"{P}/agent/1002/state",
            f"{P}/cmd",
            f"{P}/status",
            f"{P}/reply",
            f"{P}/reply/+",
            f"{P}/reply/#",
            f"{P}/reply/\ud800",
            f"{P}/reply/" + "x" * 500,
            f"{P}/replyx",
            "sup/replies",
            "",
            f"{P}/reply/fuzz",
        ]
    )
    | _values
)
_commands = st.fixed_dictionaries(
    {},
    optional={
        "command": st.sampled_from(
            ["pause", "resume", "set_dial_level", "agent_pause", "agent_unpause", "agent_logout"]
        )
        | _values,
        "campaign": st.sampled_from(["c1", "nope"]) | _values,
        "agent": st.sampled_from(["1001", "1002"]) | _values,
        "max_level": _values,
        "reason": _values,
        "reply_to": _reply_to,
        "request_id": _values,
    },
)


def _dumps(obj: Any) -> bytes:
    # allow_nan: NaN / Infinity literals go out as such; surrogates as \ud800
    return json.dumps(obj, allow_nan=True).encode()


_deep = st.builds(
    lambda opener, n, closed: opener * n + (b"]" * n if closed and opener == b"[" else b""),
    st.sampled_from([b"[", b'{"a":', b'[{"a":']),
    st.integers(1, 120_000),
    st.booleans(),
)
_literals = st.sampled_from(
    [
        b'{"command": "set_dial_level", "campaign": "c1", "max_level": NaN}',
        b'{"command": "set_dial_level", "campaign": "c1", "max_level": -Infinity}',
        b'{"command": "set_dial_level", "campaign": "c1", "max_level": 1e999}',
        b'{"command": "set_dial_level", "campaign": "c1", "max_level": 1' + b"0" * 400 + b"}",
        b'{"command": "pause", "campaign": "c1", "reply_to": "dd/reply/\\udc80"}',
        b'{"command": "pause", "campaign": "\xed\xa0\x80"}',  # a surrogate, UTF-8-encoded
        b'{"command": "pause", "campaign": "c1"',
        b"null",
        b"",
    ]
)
PAYLOADS = (
    st.binary(max_size=300)
    | _deep
    | _literals
    | _commands.map(_dumps)
    | st.builds(lambda c, n: _dumps({**c, "pad": "x" * n}), _commands, st.integers(0, 200_000))
)


# ------------------------------------------------------------------ test


async def _check(w: World, payload: bytes) -> None:
    queued_before = w.sup.shell.queue.qsize()
    await w.send(payload)
    between = await w.ping()
    replies = [m for m in between if m.topic.startswith(f"{P}/reply")]
    assert len(replies) == 1, (payload[:80], between)
    reply = replies[0].json()
    assert isinstance(reply["ok"], bool)
    stray = [m.topic for m in between if not m.topic.startswith((f"{P}/reply", f"{P}/status"))]
    assert stray == [], stray
    if not reply["ok"]:
        assert len(reply["error"]) < 200
        # the ping's resume is the only thing queued meanwhile
        assert w.sup.shell.queue.qsize() == queued_before + 1
    assert w.bridge.restarts == 0


def test_the_bridge_survives_random_and_hostile_commands(mqtt_broker: Any) -> None:
    loop = asyncio.new_event_loop()
    world_cm = bridge_world(mqtt_broker)
    w = loop.run_until_complete(world_cm.__aenter__())
    t0 = time.monotonic()
    n = 0
    try:

        @settings(
            max_examples=150,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(PAYLOADS)
        def one(payload: bytes) -> None:
            nonlocal n
            n += 1
            loop.run_until_complete(_check(w, payload))

        one()
        # still alive at the end: a valid command, and state goes out
        loop.run_until_complete(w.ping())
        loop.run_until_complete(w.state_goes_out())
        assert not [m for m in w.seen if m.topic.startswith(f"{P}/agent/")]
        assert w.bridge.restarts == 0
    finally:
        loop.run_until_complete(world_cm.__aexit__(None, None, None))
        loop.close()
    print(f"\nfuzz: {n} payloads in {time.monotonic() - t0:.1f} s")
