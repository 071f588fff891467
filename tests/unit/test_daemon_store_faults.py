"""The daemon's shell when the store fails, on a real SQLite file (no Asterisk,
no mock store): the faults are real SQLite errors.

- "database is locked": another connection holds the write lock
  (``BEGIN IMMEDIATE``) past the store's busy timeout (lowered here to
  0.1 s so the tests stay short; the daemon's is 5 s);
- a corrupted index page: the page of ``attempts_lead_started`` is
  overwritten in the file, so SQLite answers ``database disk image is
  malformed`` on the read that needs it (what a bad sector under that page
  gives), and is written back to clear the fault.

Every test here failed before the store-fault work: a failed write was
lost, a failed fetch or write-ahead left the core waiting forever.
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

import structlog

from dialerd.campaign.model import Campaign
from dialerd.core import commands as cmd
from dialerd.core import events as ev
from dialerd.core.models import LeadStatus, LeadUpdate, Outcome
from dialerd.daemon import Daemon
from dialerd.daemon.resync import resync
from dialerd.sandbox.asterisk import AmiCredentials
from dialerd.sandbox.scenario import ANSWER, sim_campaign, sim_number, write_config
from dialerd.settings import load_settings
from dialerd.store import open_store
from dialerd.store.api import StoreApi
from dialerd.store.sqlite import Store

NOW = time.time()


def camp() -> Campaign:
    return Campaign.model_validate({"name": "c1", **sim_campaign(["1001"])})


@asynccontextmanager
async def shell(
    tmp_path: Path, leads: int = 3, opened: StoreApi | None = None
) -> AsyncIterator[tuple[Daemon, Store]]:
    """A daemon's shell (not run: no AMI) on a real store, its writer
    running, campaign c1 with ``leads`` due leads. The store is a SQLite
    file in ``tmp_path`` unless ``opened`` gives another (closed here too)."""
    cfg = write_config(tmp_path, AmiCredentials("127.0.0.1", 1, "u", "s"), {})
    d = Daemon(load_settings(cfg))
    if opened is None:
        store = await Store.open(tmp_path / "dialerd.sqlite3")
        await store._conn.execute("PRAGMA busy_timeout = 100")
    else:
        store = cast(Store, opened)  # typed as SQLite's for its tests; the calls are the contract's
    await store.ensure_campaign("c1")
    rows = [(sim_number(i, ANSWER, 1, 3), 0, None, "{}") for i in range(leads)]
    await store.insert_leads("c1", rows, NOW - 60)
    d.store = store
    d.campaigns = {"c1": camp()}
    writer = asyncio.create_task(d.writer.run())
    try:
        yield d, store
    finally:
        writer.cancel()
        await asyncio.gather(writer, return_exceptions=True)
        await store.close()


def write_lock(path: Path) -> sqlite3.Connection:
    """Another connection holding the write lock until rolled back."""
    c = sqlite3.connect(path, isolation_level=None)
    c.execute("BEGIN IMMEDIATE")
    return c


def drain(d: Daemon) -> list[Any]:
    out = []
    while not d.queue.empty():
        out.append(d.queue.get_nowait())
    return out


async def until(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.02)


async def queued(d: Daemon, kind: type, seen: list[Any], timeout: float = 5.0) -> Any:
    """The first event of ``kind`` on the core's queue (kept in ``seen``)."""
    deadline = time.monotonic() + timeout
    while True:
        seen += drain(d)
        hits = [e for e in seen if isinstance(e, kind)]
        if hits:
            return hits[0]
        if time.monotonic() > deadline:
            raise AssertionError(f"no {kind.__name__} among {seen}")
        await asyncio.sleep(0.02)


def place(lead_id: int, phone: str, attempt: str = "a-1") -> cmd.PlaceCall:
    return cmd.PlaceCall(
        attempt_id=attempt,
        campaign="c1",
        lead_id=lead_id,
        phone=phone,
        channel=f"Local/{phone}@sim-customers",
        caller_id="Acme <+442071234567>",
        ring_timeout_s=15,
        variables={},
        started_at=NOW,
    )


async def test_outcome_disposition_and_dnc_survive_a_locked_store_dnc_written_first(
    tmp_path: Path,
) -> None:
    async with shell(tmp_path) as (d, store):
        (lead,) = await store.fetch_due_leads("c1", NOW, 1, frozenset())
        await store.begin_attempt(place(lead.id, lead.phone))
        # the order the store takes the writes in, recorded by the store
        raw = sqlite3.connect(tmp_path / "dialerd.sqlite3", isolation_level=None)
        raw.executescript(
            """CREATE TABLE write_order (what TEXT);
            CREATE TRIGGER w_dnc AFTER INSERT ON dnc BEGIN
                INSERT INTO write_order VALUES ('dnc'); END;
            CREATE TRIGGER w_out AFTER UPDATE OF state ON attempts BEGIN
                INSERT INTO write_order VALUES ('outcome'); END;
            CREATE TRIGGER w_dis AFTER UPDATE OF disposition ON attempts BEGIN
                INSERT INTO write_order VALUES ('disposition'); END;"""
        )
        raw.close()
        lock = write_lock(tmp_path / "dialerd.sqlite3")
        seen: list[Any] = []
        d.executor.execute(
            cmd.RecordOutcome(
                attempt_id="a-1",
                campaign="c1",
                lead_id=lead.id,
                outcome=Outcome.ANSWERED,
                ended_at=NOW + 20,
                lead=LeadUpdate(lead.id, LeadStatus.RETRY, 1, Outcome.ANSWERED, NOW + 3600),
                answered_at=NOW + 5,
                connected_at=NOW + 5,
                agent_id="1001",
            )
        )
        down = await queued(d, ev.StoreDown, seen)
        assert "finish_attempt" in down.reason and "locked" in down.reason
        # the outcome is failing; the agent keys do-not-call meanwhile
        d.executor.execute(
            cmd.RecordDisposition(
                attempt_id="a-1",
                campaign="c1",
                lead_id=lead.id,
                phone=lead.phone,
                code="do_not_call",
                lead=LeadUpdate(lead.id, LeadStatus.DONE, 1, Outcome.ANSWERED, None, "do_not_call"),
                at=NOW + 25,
                dnc="campaign",
            )
        )
        assert d.writer.pending == 3
        await asyncio.sleep(0.5)  # still locked: still owed, nothing dropped
        assert d.writer.pending == 3 and not [e for e in drain(d) if isinstance(e, ev.StoreUp)]
        lock.rollback()
        lock.close()
        await queued(d, ev.StoreUp, seen)
        assert d.writer.pending == 0
        order = [r[0] for r in await store._fetchall("SELECT what FROM write_order")]
        assert order == ["dnc", "outcome", "disposition"]
        (a,) = await store.list_attempts("c1")
        assert (a.state, a.outcome, a.disposition) == ("done", "answered", "do_not_call")
        assert ("c1", lead.phone, "disposition:do_not_call") in await store.dnc_entries()
        got = await store.get_lead(lead.id)
        assert got is not None and got.status is LeadStatus.DONE and not got.held


async def test_a_write_ahead_that_fails_places_nothing_and_gives_the_lead_back(
    tmp_path: Path,
) -> None:
    async with shell(tmp_path) as (d, store):
        (lead,) = await store.fetch_due_leads("c1", NOW, 1, frozenset())
        lock = write_lock(tmp_path / "dialerd.sqlite3")
        seen: list[Any] = []
        d.executor.execute(place(lead.id, lead.phone))  # no AMI: only the write-ahead runs
        not_placed = await queued(d, ev.CallNotPlaced, seen)
        assert not_placed.attempt_id == "a-1" and not_placed.give_back
        assert "locked" in not_placed.reason
        kinds = [type(e) for e in seen]
        assert kinds.index(ev.StoreDown) < kinds.index(ev.CallNotPlaced), (
            "the core must hear the store is down before it gets the lead back"
        )
        lock.rollback()
        lock.close()
        await queued(d, ev.StoreUp, seen)  # the writer's probe wrote
        assert await store.list_attempts("c1") == []


async def test_a_failed_lead_fetch_still_answers_the_core(tmp_path: Path) -> None:
    async with shell(tmp_path) as (d, store):
        lock = write_lock(tmp_path / "dialerd.sqlite3")
        seen: list[Any] = []
        await asyncio.wait_for(d.executor.hopper.load(cmd.LoadLeads("c1", 5)), 10)
        loaded = await queued(d, ev.LeadsLoaded, seen)
        assert loaded.leads == () and loaded.exhausted
        await queued(d, ev.StoreDown, seen)
        lock.rollback()
        lock.close()
        await queued(d, ev.StoreUp, seen)
        assert not [ld for ld in await store.list_leads("c1") if ld.held]


def corrupt_page(path: Path, index: str) -> bytes:
    """Overwrite the root page of ``index`` in the file (after a checkpoint,
    so the file holds it); returns what was there."""
    c = sqlite3.connect(path, isolation_level=None)
    try:
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        size = c.execute("PRAGMA page_size").fetchone()[0]
        root = c.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (index,)).fetchone()[
            0
        ]
        with path.open("r+b") as f:
            f.seek((root - 1) * size)
            old = f.read(size)
            f.seek((root - 1) * size)
            f.write(b"\xff" * size)
        _bump(c)
        return old
    finally:
        c.close()


def restore_page(path: Path, index: str, old: bytes) -> None:
    c = sqlite3.connect(path, isolation_level=None)
    try:
        size = c.execute("PRAGMA page_size").fetchone()[0]
        root = c.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (index,)).fetchone()[
            0
        ]
        with path.open("r+b") as f:
            f.seek((root - 1) * size)
            f.write(old)
        _bump(c)
    finally:
        c.close()


def _bump(c: sqlite3.Connection) -> None:
    # a commit from another connection: the daemon's connection drops its
    # page cache and reads the file again
    c.execute("INSERT OR REPLACE INTO store_probe (id, at, pad) VALUES (1, 0, x'00')")


async def test_a_read_that_fails_on_a_corrupt_page_releases_the_leads_it_fetched(
    tmp_path: Path,
) -> None:
    async with shell(tmp_path, leads=3) as (d, store):
        path = tmp_path / "dialerd.sqlite3"
        old = corrupt_page(path, "attempts_lead_started")
        seen: list[Any] = []
        await asyncio.wait_for(d.executor.hopper.load(cmd.LoadLeads("c1", 5)), 10)
        loaded = await queued(d, ev.LeadsLoaded, seen)
        assert loaded.leads == () and loaded.exhausted
        down = await queued(d, ev.StoreDown, seen)
        assert "attempts_since" in down.reason and "malformed" in down.reason
        await until(lambda: d.writer.pending == 0)
        assert not [ld for ld in await store.list_leads("c1") if ld.held], "leads left held"
        await asyncio.sleep(0.5)  # the writer checks the read again: still failing
        assert d.writer.down_reason is not None
        restore_page(path, "attempts_lead_started", old)
        await queued(d, ev.StoreUp, seen)


async def test_a_resync_whose_store_read_fails_is_taken_again(tmp_path: Path) -> None:
    class Ami:  # Asterisk's side of a resync: nothing live (the store is under test)
        async def action(self, _fields: dict[str, str]) -> list[dict[str, str]]:
            return [{"Event": "CoreShowChannelsComplete"}]

    async with shell(tmp_path) as (d, store):
        (lead,) = await store.fetch_due_leads("c1", NOW, 1, frozenset())
        await store.begin_attempt(place(lead.id, lead.phone, "old-1"))
        d.ami = Ami()  # type: ignore[assignment]
        path = tmp_path / "dialerd.sqlite3"
        old = corrupt_page(path, "attempts_open")
        seen: list[Any] = []
        task = asyncio.create_task(resync(d))
        await queued(d, ev.StoreDown, seen)
        await asyncio.sleep(0.6)
        assert not task.done(), "the resync gave up"
        restore_page(path, "attempts_open", old)
        rs = await queued(d, ev.Resync, seen, timeout=10)
        assert [oa.attempt_id for oa in rs.open_attempts] == ["old-1"]
        await asyncio.wait_for(task, 5)
        await queued(d, ev.StoreUp, seen)


async def test_the_core_loop_survives_a_failing_command_and_says_so(tmp_path: Path) -> None:
    async with shell(tmp_path) as (d, _store):
        loop = d.lifecycle.core_loop
        real = d.executor.execute

        def execute(c: cmd.Command) -> None:
            if isinstance(c, cmd.LoadLeads):
                raise RuntimeError("executor bug")
            real(c)

        d.executor.execute = execute  # type: ignore[method-assign]
        core = asyncio.create_task(loop.run())
        try:
            with structlog.testing.capture_logs() as logs:
                d.put(ev.CampaignLoaded(NOW, camp()))  # asks for leads: the bug
                d.put(ev.AmiUp(NOW))
                await until(lambda: d.queue.empty() and loop.errors >= 1)
            assert not core.done(), "the core task died"
            assert any(
                e["event"] == "core.command_failed" and e["command"] == "LoadLeads" for e in logs
            )
            assert any(
                e["event"] == "core.error" and e["event_type"] == "CampaignLoaded" for e in logs
            )
            before = loop.alive_at
            d.put(ev.Tick(NOW + 1))
            await until(lambda: loop.alive_at > before)
            assert "c1" in d.core.campaigns
        finally:
            core.cancel()
            await asyncio.gather(core, return_exceptions=True)


def test_a_store_that_cannot_be_opened_ends_run_with_one_clear_line(tmp_path: Path) -> None:
    cfg = write_config(
        tmp_path,
        AmiCredentials("127.0.0.1", 1, "dialerd", "s3cr3t-for-tests-only"),
        {},
        store={"path": str(tmp_path / "no-such-dir" / "d.sqlite3")},
    )
    p = subprocess.run(
        [sys.executable, "-m", "dialerd", "run", "--config", str(cfg)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 4, (p.returncode, p.stderr[-2000:])
    assert "Traceback" not in p.stderr
    assert "dialerd: cannot open the store" in p.stderr and "no-such-dir" in p.stderr


async def test_dnc_stamp_sees_a_removal_and_an_older_dated_addition(tmp_path: Path) -> None:
    store = await open_store(tmp_path / "s.sqlite3")
    try:
        await store.dnc_add(["+442071000001"], None, "t", 100.0)
        await store.dnc_add(["+442071000002"], None, "t", 200.0)
        before = await store.dnc_stamp()
        await store.dnc_remove(["+442071000002"], None)
        await store.dnc_add(["+442071000003"], None, "t", 150.0)  # older than the latest
        assert await store.dnc_stamp() != before
    finally:
        await store.close()
