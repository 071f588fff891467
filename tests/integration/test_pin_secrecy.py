"""No PIN in any log or AMI event, on a real Asterisk with a real SIP phone.

An Asterisk of its own (the production asterisk-conf/, as the sandbox
copies it) with two changes that hide nothing: logger.conf writes every
verbose level, debug and dtmf to every file and the console (production
writes verbose(3) only), and an ``auditor`` AMI user reads every class
(``read = all``: no event filter). Verbose and debug are then set to 10 on
the CLI. sipp registers as agent 7001 and logs in with a wrong PIN, then the
right one, as RFC 4733 DTMF. The daemon logs at debug through structlog and
stdlib logging (panoramisk's logger included) into a file.

Then both PINs are searched for in: every file Asterisk wrote (messages,
console output, security), the auditor's AMI stream (every field of every
event), the daemon's log and the store's database file. Not found.

The auditor does see each key as a DTMFEnd event (class ``dtmf``) and the
dtmf log level shows each key too: that is Asterisk's, whatever the
dialplan does, so production grants no AMI user ``dtmf`` and logs no
``dtmf``/``debug`` level (tests/unit/test_pins.py checks asterisk-conf/).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
import yaml
from sipp_phone import need_sipp, run_sipp

from dialerd import logs
from dialerd.agents import hash_pin
from dialerd.daemon import Daemon
from dialerd.sandbox.asterisk import AmiCredentials, AsteriskSandbox, SandboxError
from dialerd.sandbox.recorder import AmiRecorder
from dialerd.sandbox.scenario import running, sim_campaign, write_config
from dialerd.settings import load_settings
from dialerd.store import open_store

pytestmark = pytest.mark.asterisk

REPO = Path(__file__).resolve().parents[2]
AGENT = "7001"
#: 8 digits, no digit twice in a row, so a thread id or a timestamp is
#: unlikely to hold one by chance (and the search wants no digit on either
#: side)
PIN, WRONG = "62859371", "40917365"
AUDITOR, AUDITOR_SECRET = "auditor", "a-" + "7c1e5d0b9f"

LOGGER_CONF = """\
; written by test_pin_secrecy.py: everything, everywhere
[general]
dateformat = %F %T.%3q
[logfiles]
console => notice,warning,error,verbose(10),debug,dtmf
messages => notice,warning,error,verbose(10),debug,dtmf
full => notice,warning,error,verbose(10),debug,dtmf
security => security
"""


def _bytes(p: Path) -> bytes:
    return p.read_bytes()


def _found(text: str, pin: str) -> bool:
    return re.search(rf"(?<![0-9]){pin}(?![0-9])", text) is not None


@pytest.fixture
def loud_sandbox(tmp_path: Path) -> Iterator[AsteriskSandbox]:
    conf = tmp_path / "asterisk-conf"
    shutil.copytree(REPO / "asterisk-conf", conf)
    (conf / "logger.conf").write_text(LOGGER_CONF)
    with open(conf / "manager.conf", "a") as f:
        f.write(
            f"\n[{AUDITOR}]\nsecret = {AUDITOR_SECRET}\n"
            "deny = 0.0.0.0/0.0.0.0\npermit = 127.0.0.1/255.255.255.255\n"
            "read = all\nwrite = originate,call,reporting\n"
        )
    sb = AsteriskSandbox(conf_dir=conf)
    try:
        sb.start()
    except (SandboxError, OSError) as exc:
        pytest.skip(f"real Asterisk unavailable: {exc}")
    try:
        sb.cli("core set verbose 10")
        sb.cli("core set debug 10")
        yield sb
    finally:
        sb.stop()


@contextlib.contextmanager
def _daemon_debug_log(path: Path) -> Iterator[None]:
    """structlog (the project's processors, redaction included) and stdlib
    logging (panoramisk) at DEBUG, into ``path``."""
    f = open(path, "w")
    handler = logging.StreamHandler(f)
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    old_level = root.level
    real_stderr = sys.stderr
    try:
        sys.stderr = f  # structlog's PrintLogger takes the stream at configure time
        logs.configure("json", "debug")
        sys.stderr = real_stderr
        root.addHandler(handler)
        root.setLevel(logging.DEBUG)
        yield
    finally:
        sys.stderr = real_stderr
        root.removeHandler(handler)
        root.setLevel(old_level)
        structlog.reset_defaults()
        f.close()


async def test_no_pin_in_any_asterisk_log_ami_event_or_daemon_log(
    loud_sandbox: AsteriskSandbox, tmp_path: Path
) -> None:
    sipp = need_sipp()
    keys = {"pin_wrong": WRONG + "#", "pin_right": PIN + "#"}
    sb = loud_sandbox
    agents_file = tmp_path / "agents.yaml"
    agents_file.write_text(yaml.safe_dump({"agents": {AGENT: {"name": "Sipp"}}}))
    cfg = write_config(
        tmp_path,
        sb.ami_user,
        {"quiet": sim_campaign([AGENT])},
        agents_file=str(agents_file),
        agi={"port": 0},
        log={"format": "json", "level": "debug"},
    )
    settings = load_settings(cfg)
    store = await open_store(settings)
    try:
        await store.set_pin_hash(AGENT, hash_pin(PIN), time.time())
    finally:
        await store.close()

    daemon_log = tmp_path / "dialerd.log"
    rec = await AmiRecorder.connect(AmiCredentials(sb.host, sb.port, AUDITOR, AUDITOR_SECRET))
    try:
        with _daemon_debug_log(daemon_log):
            daemon = Daemon(settings)
            async with running(daemon, started_s=20):
                await run_sipp(sipp, sb, "agent_register.xml", tmp_path, 20, keys)
                await run_sipp(sipp, sb, "agent_login.xml", tmp_path, 40, keys)
                await rec.wait_for(
                    lambda s: (
                        s.get("Event") == "ConfbridgeLeave"
                        and s.get("Conference") == f"agent-{AGENT}"
                    ),
                    10,
                )
                await asyncio.sleep(0.5)
    finally:
        rec.close()

    # it happened: a wrong PIN, then the right one, and the agent's room
    store = await open_store(settings)
    try:
        logins = [(a[3], a[4]) for a in await store.agent_actions(AGENT) if a[2] == "login"]
    finally:
        await store.close()
    assert logins == [("wrong_pin", False), ("ok", True)], logins
    assert rec.named("ConfbridgeJoin", Conference=f"agent-{AGENT}")
    # the auditor saw everything: AGI commands, and each key pressed
    assert rec.named("AGIExecStart"), "the auditor must see class agi"
    pressed = "".join(
        e.get("Digit") for e in rec.named("DTMFEnd") if e.get("Channel").startswith("PJSIP/")
    )
    assert PIN in pressed, "the auditor must see class dtmf (it is how a PIN is typed)"

    texts: dict[str, str] = {}
    for p in sorted((sb.instance_dir / "log").iterdir()):
        if p.is_file():
            texts[f"asterisk {p.name}"] = p.read_text(errors="replace")
    assert "Executing [" in texts["asterisk messages"], "verbose 10 must be on"
    assert "DEBUG[" in texts["asterisk messages"], "debug must be on"
    texts["ami (auditor, read=all)"] = "\n".join(
        f"{k}: {v}" for e in rec.events for k, v in e.fields.items()
    )
    texts["dialerd debug log"] = daemon_log.read_text(errors="replace")
    assert "message interpreted" in texts["dialerd debug log"], "panoramisk's debug must be on"
    assert "agent.login" in texts["dialerd debug log"]
    texts["store database"] = _bytes(Path(settings.store.path)).decode("latin-1")
    for where, text in texts.items():
        for pin in (PIN, WRONG):
            assert not _found(text, pin), f"a PIN in the {where}"
    # and in Asterisk's dtmf lines, one key per line, never the whole PIN
    dtmf_keys = re.findall(r"DTMF end '(.)' received on PJSIP/", texts["asterisk messages"])
    assert PIN in "".join(dtmf_keys)


async def test_daemon_down_the_agent_hears_so_and_the_line_is_hung_up(
    asterisk_sandbox: Any,
) -> None:
    """No FastAGI server at DIALER_AGI: ss-noservice, then hang up (never
    a silent line)."""
    sb = asterisk_sandbox
    rec = await AmiRecorder.connect(sb.harness_user)
    try:
        # a port nobody listens on (bound then closed)
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            dead = s.getsockname()[1]
        r = await rec.action(
            {"Action": "Setvar", "Variable": "DIALER_AGI", "Value": f"127.0.0.1:{dead}"}
        )
        assert r.get("Response") == "Success"
        rec._manager.send_action(
            {
                "Action": "Originate",
                "Channel": "Local/82977@dialer-agents",
                "Application": "Wait",
                "Data": "30",
                "Async": "true",
            }
        )
        gone = await rec.wait_for(
            lambda e: (
                e.get("Event") == "Hangup"
                and e.get("Channel").startswith("Local/82977@dialer-agents-")
                and e.get("Channel").endswith(";2")
            ),
            20,
        )
        chan = gone.get("Channel")
    finally:
        rec.close()
    log = sb.log_path.read_text(errors="replace")
    mine = [ln for ln in log.splitlines() if f"<{chan}>" in ln or f"({chan}" in ln or chan in ln]
    assert any("Playing 'ss-noservice." in ln for ln in mine), mine[-20:]
    assert gone.get("Cause") == "21", dict(gone.fields)
