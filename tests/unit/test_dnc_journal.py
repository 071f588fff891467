"""A do-not-call request outlives a SIGKILL during a store outage: it is in
the journal (the runtime directory, not the store's disk) before it is
queued, and the next start writes it and screens with it before any dial.

Real SQLite file, real write queue; the outage is another connection
holding SQLite's write lock past the busy timeout.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import cast

from dialerd.core import events as ev
from dialerd.daemon import Daemon
from dialerd.daemon.dncjournal import DncJournal
from dialerd.sandbox.asterisk import AmiCredentials
from dialerd.sandbox.scenario import write_config
from dialerd.settings import load_settings
from dialerd.store import open_store
from dialerd.store.sqlite import Store

PHONE = "+442079460123"


def test_the_journal_keeps_what_has_no_done_line(tmp_path: Path) -> None:
    j = DncJournal(tmp_path / "j.jsonl")
    assert j.pending() == []
    a = j.add(PHONE, None, "disposition:dnc", 1.0)
    b = j.add("+442079460124", "sales", "disposition:dnc", 2.0)
    j.done(a)
    assert [r.id for r in j.pending()] == [b.id]
    # a torn last line (killed mid-write) is skipped, the rest still read
    with (tmp_path / "j.jsonl").open("a") as f:
        f.write('{"add": {"id": "x", "pho')
    again = DncJournal(tmp_path / "j.jsonl").pending()
    assert [(r.phone, r.campaign) for r in again] == [("+442079460124", "sales")]
    assert (tmp_path / "j.jsonl").stat().st_mode & 0o777 == 0o600
    j.clear()
    assert j.pending() == []


async def _daemon(tmp_path: Path) -> tuple[Daemon, Store]:
    cfg = write_config(tmp_path, AmiCredentials("127.0.0.1", 1, "u", "s"), {})
    d = Daemon(load_settings(cfg))
    store = cast(Store, await open_store(d.settings))
    await store._conn.execute("PRAGMA busy_timeout = 100")
    d.store = store
    return d, store


async def test_a_dnc_request_survives_a_kill_during_an_outage(tmp_path: Path) -> None:
    # run 1: the store is locked by another process when the agent's
    # do-not-call disposition arrives; the daemon is then killed
    d1, store1 = await _daemon(tmp_path)
    lock = sqlite3.connect(tmp_path / "dialerd.sqlite3", isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")
    writer = asyncio.create_task(d1.writer.run())
    d1.executor.submit_dnc(PHONE, None, "disposition:dnc", time.time(), {"attempt_id": "a1"})
    await asyncio.sleep(0.5)
    assert d1.writer.pending == 1 and d1.writer.down_reason is not None
    assert [r.phone for r in d1.dnc_journal.pending()] == [PHONE]
    writer.cancel()  # SIGKILL: the in-memory queue is gone
    await asyncio.gather(writer, return_exceptions=True)
    await store1.close()
    lock.rollback()
    lock.close()

    # run 2: the request is written first and the core screens with it
    d2, store2 = await _daemon(tmp_path)
    writer = asyncio.create_task(d2.writer.run())
    try:
        assert d2.executor.replay_dnc_journal() == 1
        for _ in range(50):
            if d2.writer.pending == 0:
                break
            await asyncio.sleep(0.05)
        assert (None, PHONE, "disposition:dnc") in await store2.dnc_entries()
        queued = []
        while not d2.queue.empty():
            queued.append(d2.queue.get_nowait())
        assert any(
            isinstance(e, ev.DncUpdated) and (None, PHONE, "disposition:dnc") in e.added
            for e in queued
        )
        assert d2.dnc_journal.pending() == []
    finally:
        writer.cancel()
        await asyncio.gather(writer, return_exceptions=True)
        await store2.close()
