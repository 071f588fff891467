"""The daemon's inbound part without Asterisk: a real daemon shell (its core
loop, executor and store writer) on a real SQLite file, fed the AMI
messages the dialplan and ConfBridge send, with a fake AMI connection that
records every action the daemon sends.

- queue files load after the campaigns, a bad file is refused with its
  file, line and field and the others run; a reload keeps a queue whose
  file broke and takes a changed one; the DID map follows;
- a caller is Redirected into the ready agent's room, their join and
  hang-up end in one ``inbound_calls`` row (answered); with no agent
  logged in they get the fallback (four Setvars, then the Redirect);
- pressing 1 books a callback lead at the campaign's earliest legal time
  and answers ``DIALER_ACK``; a DNC number or an unknown campaign is
  answered no; a locked store delays the lead and the row, never loses
  them (the caller still hears ok in time);
- the screen pop carries the caller's leads; the AGI script table sends
  ``inbound`` to its handler, which answers a known DID and records a refusal.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import structlog
import yaml

from dialerd.core import events as ev
from dialerd.core.models import LeadStatus
from dialerd.daemon import Daemon
from dialerd.daemon import inbound as daemon_inbound
from dialerd.sandbox.asterisk import AmiCredentials
from dialerd.sandbox.scenario import sim_campaign, write_config
from dialerd.settings import load_settings
from dialerd.store.sqlite import Store

CALLER = "+442079460001"
DID = "+442071234567"
AGENT_CH = "Local/1001@sim-agents-00000001;2"


class FakeAmi:
    """Records every action; answers Success (or Error for ``fail``)."""

    def __init__(self) -> None:
        self.frames: list[dict[str, Any]] = []
        self.fail: set[str] = set()
        self.connected = True

    def send(self, fields: Any) -> asyncio.Future[Any]:
        self.frames.append(dict(fields))
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        bad = fields.get("Action") in self.fail
        fut.set_result({"Response": "Error" if bad else "Success", "Message": "No such channel"})
        return fut

    async def wait_future(self, fut: asyncio.Future[Any], timeout: float) -> Any:
        return await asyncio.wait_for(fut, timeout)

    def actions(self, channel: str) -> list[tuple[str, ...]]:
        """(Action, Variable/Context, Value/Exten) of what went to ``channel``."""
        out: list[tuple[str, ...]] = []
        for f in self.frames:
            if f.get("Channel") != channel:
                continue
            if f["Action"] == "Setvar":
                out.append(("Setvar", f["Variable"], f["Value"]))
            elif f["Action"] == "Redirect":
                out.append(("Redirect", f["Context"], f["Exten"]))
            else:
                out.append((f["Action"],))
        return out


class FakeMqtt:
    def __init__(self) -> None:
        self.published: list[tuple[str, Any]] = []

    def publish(self, topic: str, payload: Any, retain: bool = False) -> None:
        self.published.append((topic, payload))

    def event(self, kind: str, **fields: Any) -> None:
        self.published.append(("events", {"event": kind, **fields}))


def queue_body(name: str = "support", **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": name,
        "dids": [DID],
        "campaigns": ["c1"],
        "service_level": {"percent": 80, "within_s": 20},
        "max_wait_s": 60,
        "callback_campaign": "c1",
        "after_max_wait": {"action": "callback", "offer_sound": "custom/offer", "sound": "bye"},
        "no_agents": {"action": "message", "sound": "custom/closed"},
        "hold": {"music": "default"},
    }
    body.update(over)
    return body


def write_queue(tmp_path: Path, file: str, body: dict[str, Any] | str) -> Path:
    qdir = tmp_path / "queues"
    qdir.mkdir(exist_ok=True)
    p = qdir / file
    p.write_text(body if isinstance(body, str) else yaml.safe_dump(body, sort_keys=False))
    return p


class Rig:
    def __init__(self, d: Daemon, store: Store, ami: FakeAmi, mqtt: FakeMqtt) -> None:
        self.d, self.store, self.ami, self.mqtt = d, store, ami, mqtt
        self.events: list[Any] = []

    def pump(self) -> list[Any]:
        """Everything queued for the core, handled (as the core task would)."""
        seen = []
        while not self.d.queue.empty():
            item = self.d.queue.get_nowait()
            seen.append(item)
            self.d.lifecycle.core_loop.step(item)
        self.events += seen
        return seen

    def ami_event(self, **msg: str) -> None:
        self.d.put(msg)
        self.pump()

    def agent_joins(self, agent: str = "1001") -> None:
        self.ami_event(
            Event="ConfbridgeJoin",
            Conference=f"agent-{agent}",
            Channel=AGENT_CH.replace("1001", agent),
            Uniqueid=f"u-{agent}",
        )

    def caller_arrives(self, uid: str, queue: str = "support", caller: str = CALLER) -> str:
        channel = f"PJSIP/carrier-{uid.replace('.', '')}"
        self.ami_event(
            Event="UserEvent",
            UserEvent="DialerInbound",
            Call=uid,
            Queue=queue,
            Did=DID,
            Caller=caller,
            Channel=channel,
            Uniqueid=uid,
        )
        return channel

    async def until(self, cond: Callable[[], Any], timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            self.pump()
            got = cond()
            if asyncio.iscoroutine(got):
                got = await got
            if got:
                return
            if time.monotonic() > deadline:
                raise AssertionError("timed out")
            await asyncio.sleep(0.02)


@asynccontextmanager
async def rig(
    tmp_path: Path, queues: dict[str, Any] | None = None, **camp: Any
) -> AsyncIterator[Rig]:
    """A daemon (not run) with campaign c1 (agents 1001, 1002; no leads),
    the queue files ``queues`` (file -> body), its store and writer, a fake
    AMI and MQTT."""
    for file, body in (queues if queues is not None else {"support.yaml": queue_body()}).items():
        write_queue(tmp_path, file, body)
    (tmp_path / "queues").mkdir(exist_ok=True)
    cfg = write_config(
        tmp_path,
        AmiCredentials("127.0.0.1", 1, "u", "s"),
        {"c1": sim_campaign(["1001", "1002"], **camp)},
        queues_dir=str(tmp_path / "queues"),
        agi={"port": 0},
    )
    d = Daemon(load_settings(cfg))
    store = await Store.open(tmp_path / "dialerd.sqlite3")
    await store._conn.execute("PRAGMA busy_timeout = 100")
    d.store = store
    ami, mqtt = FakeAmi(), FakeMqtt()
    d.ami = ami  # type: ignore[assignment]
    d.mqtt = mqtt  # type: ignore[assignment]
    writer = asyncio.create_task(d.writer.run())
    r = Rig(d, store, ami, mqtt)
    try:
        d.campaign_files.load()
        d.queue_files.load()
        r.pump()
        await r.until(lambda: d.writer.pending == 0)  # ensure_campaign
        yield r
    finally:
        writer.cancel()
        await asyncio.gather(writer, return_exceptions=True)
        await d.io_tasks.cancel()
        await d.store_tasks.cancel()
        await store.close()


async def rows(store: Store) -> list[Any]:
    return await store.inbound_calls()


# ------------------------------------------------------------- queue files


async def test_queues_load_after_the_campaigns_and_a_bad_file_is_refused_with_its_line(
    tmp_path: Path,
) -> None:
    bad = queue_body("sales", dids=["+442071234999"], max_wait_s=2)
    with structlog.testing.capture_logs() as logs:
        async with rig(tmp_path, {"a-support.yaml": queue_body(), "b-sales.yaml": bad}) as r:
            kinds = [type(e).__name__ for e in r.events if not isinstance(e, dict)]
            # the core hears the campaigns first, then the queues
            assert kinds.index("QueuesLoaded") > kinds.index("CampaignLoaded")
            (loaded,) = [e for e in r.events if isinstance(e, ev.QueuesLoaded)]
            assert [q.name for q in loaded.queues] == ["support"]
            assert set(r.d.core.queues) == {"support"}
            assert r.d.core.queues["support"].agents == frozenset({"1001", "1002"})
            assert r.d.did_queues == {DID: "support"}
            q = r.d.queue_for_did(DID)
            assert q is not None and q.name == "support"
            assert r.d.queue_for_did("+442071234999") is None
            # the AGI server serves the inbound script even without an agents file
            assert r.d.agi is not None and "inbound" in r.d.agi.scripts
    (err,) = [e for e in logs if e["event"] == "queue.rejected"]
    assert "b-sales.yaml:" in err["error"] and "max_wait_s" in err["error"]
    line = int(err["error"].split("b-sales.yaml:")[1].split(":")[0])
    assert (
        (tmp_path / "queues" / "b-sales.yaml")
        .read_text()
        .splitlines()[line - 1]
        .startswith("max_wait_s")
    )


async def test_reload_keeps_a_queue_whose_file_broke_and_takes_a_changed_one(
    tmp_path: Path,
) -> None:
    async with rig(tmp_path, {"support.yaml": queue_body(), "vip.yaml": queue_body(
        "vip", dids=["+442071234568"], priority=10)}) as r:  # fmt: skip
        write_queue(tmp_path, "support.yaml", "name: support\ndids: [\n")  # broken YAML
        write_queue(tmp_path, "vip.yaml", queue_body("vip", dids=["+442071234569"]))
        with structlog.testing.capture_logs() as logs:
            r.d.reload()
            r.pump()
        assert any(e["event"] == "queue.kept" and e["queue"] == "support" for e in logs)
        assert any(e["event"] == "queue.rejected" for e in logs)
        last = [e for e in r.events if isinstance(e, ev.QueuesLoaded)][-1]
        assert sorted(q.name for q in last.queues) == ["support", "vip"]
        assert r.d.did_queues == {DID: "support", "+442071234569": "vip"}
        assert r.d.core.queues["vip"].cfg.priority == 0
        # a queue file removed: the queue takes no new caller
        (tmp_path / "queues" / "vip.yaml").unlink()
        r.d.reload()
        r.pump()
        assert r.d.core.queues["vip"].removed and "+442071234569" not in r.d.did_queues


async def test_a_daemon_without_queues_dir_loads_none(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, AmiCredentials("127.0.0.1", 1, "u", "s"), {})
    d = Daemon(load_settings(cfg))
    d.queue_files.load()
    assert d.queue.empty() and d.queues == {} and d.agi is None


# ------------------------------------------------------------ the call path


async def test_a_caller_is_redirected_to_the_ready_agent_and_recorded_answered(
    tmp_path: Path,
) -> None:
    async with rig(tmp_path) as r:
        r.agent_joins("1001")
        ch = r.caller_arrives("1700000050.1")
        # the outbound path's own Redirect, into the agent's room
        assert ("Redirect", "dialer-bridge", "1001") in r.ami.actions(ch)
        assert r.d.core.inbound["1700000050.1"].state.value == "connecting"
        r.ami_event(
            Event="ConfbridgeJoin", Conference="agent-1001", Channel=ch, Uniqueid="1700000050.1"
        )
        assert r.d.core.agents["1001"].status.value == "talking"
        # the caller's join did not log a second agent in
        assert set(r.d.core.agents) == {"1001"}
        r.ami_event(Event="Hangup", Uniqueid="1700000050.1", Cause="16", Channel=ch)
        await r.until(lambda: rows(r.store))
        (row,) = await rows(r.store)
        assert (row.call_id, row.queue, row.did, row.caller) == (
            "1700000050.1",
            "support",
            DID,
            CALLER,
        )
        assert (row.outcome, row.agent_id, row.sl_within_s, row.fallback) == (
            "answered",
            "1001",
            20,
            None,
        )
        assert row.answered_at is not None and row.ended_at >= row.answered_at
        # the screen pop went to the agent, kind inbound
        pops = [p for t, p in r.mqtt.published if t == "agent/1001/screenpop"]
        assert pops and pops[-1]["kind"] == "inbound" and pops[-1]["caller"] == CALLER


async def test_a_failed_redirect_puts_the_caller_back_first_in_line(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        r.agent_joins("1001")
        r.ami.fail.add("Redirect")
        r.caller_arrives("1700000051.1")
        await r.until(lambda: any(isinstance(e, ev.RedirectFailed) for e in r.events))
        fails = [e for e in r.events if isinstance(e, ev.RedirectFailed)]
        assert fails[0].attempt_id == "1700000051.1"


async def test_no_agent_logged_in_gives_the_fallback_and_it_is_recorded(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        ch = r.caller_arrives("1700000052.1")
        assert r.ami.actions(ch) == [
            ("Setvar", "DIALER_FB_OFFER", ""),
            ("Setvar", "DIALER_FB_TIMEOUT", "10"),
            ("Setvar", "DIALER_FB_BOOKED", ""),
            ("Setvar", "DIALER_FB_SOUND", "custom/closed"),
            ("Redirect", "dialer-inbound-fallback", "message"),
        ]
        r.ami_event(Event="Hangup", Uniqueid="1700000052.1", Cause="16", Channel=ch)
        await r.until(lambda: rows(r.store))
        (row,) = await rows(r.store)
        assert (row.outcome, row.fallback, row.agent_id, row.answered_at) == (
            "fallback",
            "no_agents",
            None,
            None,
        )


def callback_queue() -> dict[str, Any]:
    return queue_body(
        no_agents={
            "action": "callback",
            "offer_sound": "custom/offer",
            "offer_timeout_s": 7,
            "booked_sound": "custom/booked",
            "sound": "custom/bye",
        }
    )


async def test_press_1_books_a_callback_lead_and_answers_ok(tmp_path: Path) -> None:
    async with rig(tmp_path, {"support.yaml": callback_queue()}) as r:
        ch = r.caller_arrives("1700000053.1")
        assert r.ami.actions(ch)[-1] == ("Redirect", "dialer-inbound-fallback", "callback")
        assert ("Setvar", "DIALER_FB_TIMEOUT", "7") in r.ami.actions(ch)
        r.ami_event(
            Event="UserEvent", UserEvent="DialerCallback", Call="1700000053.1", Channel=ch,
            Queue="support", Caller=CALLER,
        )  # fmt: skip
        await r.until(lambda: ("Setvar", "DIALER_ACK", "ok") in r.ami.actions(ch))
        (lead,) = await r.store.list_leads("c1")
        assert lead.phone == CALLER and lead.status is LeadStatus.RETRY
        assert lead.fields == {"source": "inbound", "queue": "support", "call_id": "1700000053.1"}
        # the sandbox campaign may call at any hour: due at once, a callback
        (due,) = await r.store.fetch_due_leads("c1", time.time() + 1, 5, frozenset())
        assert due.id == lead.id and due.callback
        r.ami_event(Event="Hangup", Uniqueid="1700000053.1", Cause="16", Channel=ch)
        await r.until(lambda: rows(r.store))
        (row,) = await rows(r.store)
        assert (row.outcome, row.callback_campaign, row.fallback) == ("callback", "c1", "no_agents")


async def test_the_callback_is_due_at_the_campaigns_earliest_legal_time(tmp_path: Path) -> None:
    from dialerd.rules.windows import may_call, zones_for_number

    # a real window, no override: 10:00-11:00 in the callee's zone
    comp = {
        "schedule": {"hours": {"daily": ["10:00-11:00"]}},
        "safe_harbor": {"seller": "Acme", "callback_number": "+442071234567"},
    }
    async with rig(tmp_path, {"support.yaml": callback_queue()}, compliance=comp) as r:
        before = time.time()
        ch = r.caller_arrives("1700000054.1")
        r.ami_event(Event="UserEvent", UserEvent="DialerCallback", Call="1700000054.1", Channel=ch)
        await r.until(lambda: ("Setvar", "DIALER_ACK", "ok") in r.ami.actions(ch))
        (lead,) = await r.store.list_leads("c1")
        sched = r.d.campaigns["c1"].compliance.schedule
        zones = zones_for_number(CALLER)
        assert lead.next_due_at >= before - 1
        assert may_call(sched, zones, lead.next_due_at).ok
        # nothing earlier was allowed: a second before it was refused, or it is now
        if lead.next_due_at > time.time() + 1:
            assert not may_call(sched, zones, lead.next_due_at - 1).ok


async def test_a_callback_for_a_dnc_number_or_with_no_number_is_answered_no(
    tmp_path: Path,
) -> None:
    async with rig(tmp_path, {"support.yaml": callback_queue()}) as r:
        r.d.put(ev.DncUpdated(time.time(), added=((None, CALLER, "test"),)))
        r.pump()
        ch = r.caller_arrives("1700000055.1")
        r.ami_event(Event="UserEvent", UserEvent="DialerCallback", Call="1700000055.1", Channel=ch)
        await r.until(lambda: ("Setvar", "DIALER_ACK", "no") in r.ami.actions(ch))
        # withheld number: the core answers no itself
        ch2 = r.caller_arrives("1700000055.2", caller="anonymous")
        r.ami_event(Event="UserEvent", UserEvent="DialerCallback", Call="1700000055.2", Channel=ch2)
        await r.until(lambda: ("Setvar", "DIALER_ACK", "no") in r.ami.actions(ch2))
        # an unknown caller id: no
        r.ami_event(Event="UserEvent", UserEvent="DialerCallback", Call="9.9", Channel="PJSIP/x-1")
        await r.until(lambda: ("Setvar", "DIALER_ACK", "no") in r.ami.actions("PJSIP/x-1"))
        await asyncio.sleep(0.1)
        assert await r.store.list_leads("c1") == []


async def test_a_locked_store_delays_the_callback_and_the_record_and_loses_neither(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(daemon_inbound, "ACK_WAIT_S", 0.3)
    async with rig(tmp_path, {"support.yaml": callback_queue()}) as r:
        lock = sqlite3.connect(tmp_path / "dialerd.sqlite3", isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")
        try:
            ch = r.caller_arrives("1700000056.1")
            r.ami_event(
                Event="UserEvent", UserEvent="DialerCallback", Call="1700000056.1", Channel=ch
            )
            # the caller hears ok in time: the lead is owed, not lost
            await r.until(lambda: ("Setvar", "DIALER_ACK", "ok") in r.ami.actions(ch), 3.0)
            r.ami_event(Event="Hangup", Uniqueid="1700000056.1", Cause="16", Channel=ch)
            await r.until(lambda: any(isinstance(e, ev.StoreDown) for e in r.events))
            # the store cannot record: no new call anywhere
            assert r.d.core.store_down is not None
            assert r.d.writer.pending >= 2
        finally:
            lock.execute("ROLLBACK")
            lock.close()
        await r.until(lambda: r.d.writer.pending == 0 and r.d.core.store_down is None, 10.0)
        (lead,) = await r.store.list_leads("c1")
        assert lead.phone == CALLER and lead.status is LeadStatus.RETRY
        (row,) = await rows(r.store)
        assert row.outcome == "callback" and row.callback_campaign == "c1"


async def test_the_inbound_screen_pop_carries_the_callers_leads(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        await r.store.insert_leads("c1", [(CALLER, 0, None, '{"name": "Ada"}')], time.time())
        r.agent_joins("1001")
        r.caller_arrives("1700000057.1")
        await r.until(lambda: [p for t, p in r.mqtt.published if t.endswith("/screenpop")])
        (pop,) = [p for t, p in r.mqtt.published if t == "agent/1001/screenpop"]
        assert pop["kind"] == "inbound" and pop["queue"] == "support" and pop["did"] == DID
        assert pop["call_id"] == "1700000057.1" and pop["waited_s"] >= 0
        (lead,) = pop["leads"]
        assert lead["campaign"] == "c1" and lead["fields"] == {"name": "Ada"}
        assert lead["last_attempt"] is None and pop["leads_error"] is None


async def test_a_refused_unknown_did_is_recorded(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        r.d.record_refused("1700000058.1", "+442070000000", "", time.time())
        await r.until(lambda: rows(r.store))
        (row,) = await rows(r.store)
        assert (row.outcome, row.queue, row.did, row.sl_within_s) == (
            "refused",
            "",
            "+442070000000",
            None,
        )


# -------------------------------------------------------------------- AGI


async def test_the_agi_table_answers_inbound_and_records_a_refusal(tmp_path: Path) -> None:
    import contextlib

    async with rig(tmp_path) as r, contextlib.AsyncExitStack() as stack:
        assert r.d.agi is not None
        await r.d.agi.start(stack)
        assert r.d.agi.address is not None
        port = int(r.d.agi.address.rsplit(":", 1)[1])

        async def call(script: str, did: str, uid: str) -> list[str]:
            rd, wr = await asyncio.open_connection("127.0.0.1", port)
            env = (
                f"agi_network_script: {script}\nagi_channel: PJSIP/carrier-1\n"
                f"agi_uniqueid: {uid}\nagi_callerid: +442079460123\nagi_arg_1: {did}\n"
            )
            wr.write(env.encode() + b"\n")
            asked = []
            while line := (await rd.readline()).decode().strip():
                asked.append(line)
                wr.write(b"200 result=1\n")
            wr.close()
            return asked

        known = await call("inbound", DID, "1700000001.1")
        assert known[0] == "SET VARIABLE DIALER_QUEUE support"
        assert known[-1] == "SET VARIABLE DIALER_ACK queue"
        assert await call("inbound", "+442070000000", "1700000002.1") == [
            "SET VARIABLE DIALER_ACK no"
        ]
        await r.until(lambda: rows(r.store))
        (row,) = await rows(r.store)  # the refusal only: the known DID is the core's
        assert (row.call_id, row.outcome, row.did, row.caller) == (
            "1700000002.1", "refused", "+442070000000", "+442079460123",
        )  # fmt: skip
        # a script nobody registered: the session just ends
        assert await call("nonsense", DID, "1700000003.1") == []


async def test_removing_the_last_queue_file_tells_the_core(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        (tmp_path / "queues" / "support.yaml").unlink()
        r.d.reload()
        r.pump()
        last = [e for e in r.events if isinstance(e, ev.QueuesLoaded)][-1]
        assert last.queues == () and r.d.did_queues == {}
        assert r.d.core.queues["support"].removed


async def test_an_agents_disposition_of_a_caller_is_written_with_dnc_and_callback(
    tmp_path: Path,
) -> None:
    """The disposition key after an inbound call: the code on the caller's
    row; a callback code books a lead for the caller; do-not-call blocks
    their number in the store's DNC list."""
    async with rig(tmp_path) as r:
        r.agent_joins("1001")
        for uid, key, data in (("1700000060.1", "3", "30"), ("1700000061.1", "5", "")):
            ch = r.caller_arrives(uid)
            r.ami_event(Event="ConfbridgeJoin", Conference="agent-1001", Channel=ch, Uniqueid=uid)
            r.ami_event(Event="Hangup", Uniqueid=uid, Cause="16", Channel=ch)
            r.ami_event(Event="UserEvent", UserEvent="DialerKey", Agent="1001", Key=key,
                        Data=data, Channel=AGENT_CH)  # fmt: skip

        async def disposed() -> bool:
            return [x.disposition for x in await rows(r.store)] == ["callback", "do_not_call"]

        await r.until(disposed)
        (lead,) = await r.store.list_leads("c1")
        assert lead.phone == CALLER and lead.status is LeadStatus.RETRY
        assert lead.fields["call_id"] == "1700000060.1"
        assert lead.next_due_at is not None and lead.next_due_at > time.time() + 25 * 60

        async def blocked() -> bool:
            return ("c1", CALLER, "disposition:do_not_call") in await r.store.dnc_entries()

        await r.until(blocked)
