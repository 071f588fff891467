"""Simulated agents for tests and the demo: log in/out over AMI (panoramisk).

A simulated agent is ``Local/<agent>@sim-agents`` originated to the ``Wait``
application: the ``;2`` half walks into the PRODUCTION ``[dialer-agent-room]``
context exactly as a softphone dialing ``8<agent>`` would, so the daemon sees
the same ``ConfbridgeJoin`` (Conference ``agent-<id>``) as in production.

Facts the helpers rely on (verified on Asterisk 22.10):
* the agent's channel in the room is the ``;2`` half
  (``Local/<id>@sim-agents-XXXXXXXX;2``, Uniqueid ``<ChannelId>;2``);
* an Async Originate's panoramisk future resolves to
  ``[Response, OriginateResponse]`` once the Local channel is up.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterable
from typing import Any

#: how long a simulated agent stays logged in unless logged out (seconds)
AGENT_SESSION_S = 86_400


def agent_channel_id(agent_id: str) -> str:
    """A fresh Uniqueid for the agent's Local channel (``;2`` gets ``;2`` appended)."""
    return f"sim-agent-{agent_id}-{secrets.token_hex(4)}"


def _check_agent_id(agent_id: str) -> None:
    # values go into AMI headers verbatim: refuse anything but digits
    if not (agent_id.isascii() and agent_id.isdigit() and 2 <= len(agent_id) <= 10):
        raise ValueError(f"agent id {agent_id!r} must be 2-10 digits")


def _final(resp: Any) -> Any:
    """The OriginateResponse of a resolved Async Originate future."""
    return resp[-1] if isinstance(resp, list) else resp


async def login_agents(
    ami: Any, agent_ids: Iterable[str], *, deadline_s: float = 10.0
) -> dict[str, str]:
    """Log simulated agents in, all at once; return ``{agent_id: ChannelId}``.

    All Originates are sent before any is awaited (awaiting each in turn
    would serialise them on their OriginateResponse), every one with an
    explicit ``Async: true`` (panoramisk breaks the connection without it).
    Returns when every OriginateResponse says Success. The agent's
    ConfbridgeJoin follows about 0.5 s later (Answer() on the media-less ;2
    half waits up to 500 ms for a first frame); callers that need the agent
    ready wait for that event themselves.
    """
    ids = list(agent_ids)
    for a in ids:
        _check_agent_id(a)
    chan_ids = {a: agent_channel_id(a) for a in ids}
    futures = [
        ami.send_action(
            {
                "Action": "Originate",
                "Channel": f"Local/{a}@sim-agents",
                "Application": "Wait",
                "Data": str(AGENT_SESSION_S),
                "ChannelId": chan_ids[a],
                "Async": "true",
                "Timeout": str(int(deadline_s * 1000)),
            }
        )
        for a in ids
    ]
    results = await asyncio.wait_for(asyncio.gather(*futures), deadline_s)
    failed = [
        (a, dict(_final(r)))
        for a, r in zip(ids, results, strict=True)
        if _final(r).get("Response") != "Success"
    ]
    if failed:
        raise RuntimeError(f"simulated agent login failed: {failed}")
    return chan_ids


async def logout_agent(ami: Any, agent_id: str, *, deadline_s: float = 5.0) -> None:
    """Hang up every simulated channel of this agent (both Local halves).

    The agent's ConfbridgeLeave and Hangup follow; a customer in the room is
    removed too (``end_marked`` in the customer's profile).
    """
    _check_agent_id(agent_id)
    resp = await asyncio.wait_for(
        ami.send_action(
            {
                "Action": "Hangup",
                # a regex Channel (leading '/') matches both ;1 and ;2 halves
                "Channel": f"/^Local\\/{agent_id}@sim-agents-/",
                "Cause": "16",
            }
        ),
        deadline_s,
    )
    # a regex Hangup answers with a list: ack, ChannelHangup..., ListComplete
    r = resp[0] if isinstance(resp, list) else resp
    if r.get("Response") != "Success":
        raise RuntimeError(f"logout of agent {agent_id} failed: {dict(r)}")
