"""The inbound verdict (dialerd.daemon.inbound_agi): which DIDs are taken,
what the dialplan is told, in which order, and over a real FastAGI socket.

The dialplan that reads these variables is tested on a real Asterisk in
tests/integration/test_inbound_dialplan.py; here, the daemon's side alone."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from dialerd.campaign.queue_loader import load_queue_file
from dialerd.campaign.queues import Hold, Queue
from dialerd.daemon.agi import serve_agi
from dialerd.daemon.inbound_agi import (
    inbound_verdict,
    normalize_did,
    queues_by_did,
    serve_inbound,
)

REPO = Path(__file__).resolve().parents[2]


def _queue(**over: Any) -> Queue:
    """The shipped example queue (every key set), with changes."""
    base = load_queue_file(REPO / "config" / "queues" / "support.yaml")
    return base.model_copy(update=over)


def test_a_known_did_gets_its_queue_with_ack_set_last() -> None:
    q = _queue()
    v = inbound_verdict(queues_by_did([q]), "+442071234567")
    assert v.ack == "queue" and v.queue == "support" and v.did == "+442071234567"
    assert v.variables == (
        ("DIALER_QUEUE", "support"),
        ("DIALER_DID", "+442071234567"),
        ("DIALER_HOLD_MOH", "default"),
        ("DIALER_ANNOUNCE", "custom/support-welcome"),
        ("DIALER_MAX_WAIT", "180"),
        ("DIALER_ACK", "queue"),
    )


def test_a_prompt_loop_queue_without_announce() -> None:
    q = _queue(hold=Hold(prompt="custom/still-waiting", every_s=20), announce_sound=None)
    v = inbound_verdict(queues_by_did([q]), "+442071234568")
    assert dict(v.variables) == {
        "DIALER_QUEUE": "support",
        "DIALER_DID": "+442071234568",
        "DIALER_HOLD_PROMPT": "custom/still-waiting",
        "DIALER_HOLD_EVERY": "20",
        "DIALER_MAX_WAIT": "180",
        "DIALER_ACK": "queue",
    }
    assert v.variables[-1] == ("DIALER_ACK", "queue")


@pytest.mark.parametrize(
    "arg",
    [
        "442071234567",  # E.164 without the plus, as many carriers send it
        "+44 20 7123 4567",  # never from the dialplan (FILTER), still the same number
    ],
)
def test_the_did_is_read_in_the_forms_carriers_send(arg: str) -> None:
    v = inbound_verdict(queues_by_did([_queue()]), arg.replace(" ", ""))
    assert v.ack == "queue" and v.did == "+442071234567"


def test_a_national_did_needs_a_region() -> None:
    queues = queues_by_did([_queue()])
    assert inbound_verdict(queues, "02071234567").ack == "no"
    assert inbound_verdict(queues, "02071234567", region="GB").did == "+442071234567"


@pytest.mark.parametrize(
    "arg",
    [
        "",  # the dialplan's FILTER left nothing
        "+442071234569",  # a valid number that is no queue's
        "+1",
        "12345678901234567890123456789012345",
        "+44207123456a",
        "+44+2071234567",
        "+442071234567\nDIALER_ACK queue",
        "٤٤٢٠٧١٢٣٤٥٦٧",  # non-ASCII digits
    ],
)
def test_anything_else_is_refused(arg: str) -> None:
    v = inbound_verdict(queues_by_did([_queue()]), arg)
    assert v.ack == "no" and v.queue is None and v.variables == (("DIALER_ACK", "no"),)


def test_a_disabled_queue_takes_no_calls() -> None:
    assert inbound_verdict(queues_by_did([_queue(enabled=False)]), "+442071234567").ack == "no"


def test_normalize_did() -> None:
    assert normalize_did("+442071234567") == "+442071234567"
    assert normalize_did("  442071234567 ") == "+442071234567"
    assert normalize_did("abc") is None


# ------------------------------------------------------------- over FastAGI


@dataclass
class Channel:
    """Asterisk's side of one ``inbound`` AGI session."""

    port: int
    did: str
    commands: list[str] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)
    hang_up_after: int | None = None

    async def call(self) -> dict[str, str]:
        r, w = await asyncio.open_connection("127.0.0.1", self.port)
        env = {
            "agi_network": "yes",
            "agi_network_script": "inbound",
            "agi_channel": "PJSIP/trunk-out-00000001",
            "agi_arg_1": self.did,
        }
        w.write("".join(f"{k}: {v}\n" for k, v in env.items()).encode() + b"\n")
        while line := (await r.readline()).decode().strip():
            self.commands.append(line)
            if self.hang_up_after is not None and len(self.commands) > self.hang_up_after:
                w.write(b"200 result=-1\n")
                continue
            words = line.split()
            assert words[:2] == ["SET", "VARIABLE"] and len(words) == 4, line
            self.variables[words[2]] = words[3]
            w.write(b"200 result=1\n")
        w.close()
        return self.variables


async def _serve(queues: dict[str, Queue], seen: list[Any]) -> asyncio.Server:
    async def handler(agi: Any) -> None:
        seen.append(await serve_inbound(agi, queues))

    return await serve_agi("127.0.0.1", 0, handler, allow=["127.0.0.1/32"], max_sessions=4)


async def test_serve_inbound_sets_the_variables_over_a_real_socket() -> None:
    seen: list[Any] = []
    server = await _serve(queues_by_did([_queue()]), seen)
    port = server.sockets[0].getsockname()[1]
    try:
        ch = Channel(port, "+442071234567")
        got = await asyncio.wait_for(ch.call(), 5)
        assert got["DIALER_ACK"] == "queue" and got["DIALER_DID"] == "+442071234567"
        assert ch.commands[-1] == "SET VARIABLE DIALER_ACK queue"
        refused = Channel(port, "+442071230000")
        assert await asyncio.wait_for(refused.call(), 5) == {"DIALER_ACK": "no"}
        assert [v.ack for v in seen] == ["queue", "no"]
    finally:
        server.close()
        await server.wait_closed()


async def test_a_caller_gone_mid_verdict_never_gets_an_ack() -> None:
    """The caller hung up while the variables were being set: the session
    ends without DIALER_ACK (the dialplan's no-verdict path, moot here)."""
    seen: list[Any] = []
    server = await _serve(queues_by_did([_queue()]), seen)
    port = server.sockets[0].getsockname()[1]
    try:
        ch = Channel(port, "+442071234567", hang_up_after=1)
        got = await asyncio.wait_for(ch.call(), 5)
        assert "DIALER_ACK" not in got and seen == []
    finally:
        server.close()
        await server.wait_closed()


def test_the_dialplan_keeps_the_contract_names() -> None:
    """The names the daemon writes are the ones [dialer-inbound] reads, and
    the caller id reaches no application but a FILTERed UserEvent."""
    ext = (REPO / "asterisk-conf" / "extensions.conf").read_text()
    body = ext[ext.index("\n[dialer-inbound]\n") : ext.index("\n[dialer-agents]\n")]
    code = "\n".join(ln for ln in body.splitlines() if not ln.lstrip().startswith(";"))
    for name in (
        "DIALER_ACK",
        "DIALER_QUEUE",
        "DIALER_DID",
        "DIALER_HOLD_MOH",
        "DIALER_HOLD_PROMPT",
        "DIALER_HOLD_EVERY",
        "DIALER_ANNOUNCE",
        "DIALER_MAX_WAIT",
        "DIALER_FB_OFFER",
        "DIALER_FB_TIMEOUT",
        "DIALER_FB_BOOKED",
        "DIALER_FB_SOUND",
    ):
        assert "${" + name + "}" in code, name
    assert "AGI(agi://${DIALER_AGI}/inbound,${FILTER(+0123456789,${EXTEN})})" in code
    assert "Set(CALLERID(num)=${FILTER(+0123456789,${CALLERID(num)})})" in code
    for ln in code.splitlines():
        if "${CALLERID(num)}" in ln:
            assert "UserEvent(" in ln or "Set(CALLERID(num)=" in ln, ln
            assert ln.count("${CALLERID(num)}") == ln.count("FILTER(+0123456789,${CALLERID(num)})")


async def test_an_environment_with_a_repeated_key_is_refused() -> None:
    """A caller id or dialed number holding a line break (PJSIP decodes a
    SIP URI's %0A) adds lines of its own to the AGI environment, e.g. a
    second agi_channel: the session is dropped before the handler runs, and
    the dialplan takes its no-verdict path."""
    seen: list[Any] = []
    server = await _serve(queues_by_did([_queue()]), seen)
    port = server.sockets[0].getsockname()[1]
    try:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(
            b"agi_network_script: inbound\nagi_channel: PJSIP/trunk-out-00000001\n"
            b"agi_callerid: +44\nagi_channel: PJSIP/7001-00000002\n"
            b"agi_arg_1: +442071234567\n\n"
        )
        assert await asyncio.wait_for(r.read(), 5) == b""  # closed, no command
        w.close()
        assert seen == []
    finally:
        server.close()
        await server.wait_closed()


def test_the_sandbox_tree_gets_the_music_package_when_it_lacks_its_files(tmp_path: Path) -> None:
    """An existing cache built before the music-on-hold package joined the
    build is told apart from a complete one (ensure_root then installs it)."""
    from dialerd.sandbox.asterisk import DEBOOTSTRAP_INCLUDE, LATER_PACKAGES, _missing_packages

    assert set(LATER_PACKAGES.values()) <= set(DEBOOTSTRAP_INCLUDE.split(","))
    assert _missing_packages(tmp_path) == ["asterisk-moh-opsound-gsm"]
    moh = tmp_path / "usr/share/asterisk/moh"
    moh.mkdir(parents=True)
    assert _missing_packages(tmp_path) == ["asterisk-moh-opsound-gsm"]  # empty: not there
    (moh / "track.gsm").write_bytes(b"")
    assert _missing_packages(tmp_path) == []
