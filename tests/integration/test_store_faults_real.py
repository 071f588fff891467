"""Store faults while the daemon dials through the real Asterisk sandbox,
made for real on the daemon's own SQLite file:

- a second process holds SQLite's write lock (``BEGIN IMMEDIATE`` and a
  sleep) past the store's busy timeout, while calls end and leads load;
- a full disk, for 1 s and for 60 s: the store lives on a small tmpfs,
  filled by a filler file (deleted to clear), while answered calls end with
  dispositions (do-not-call among them);
- a read that fails: the page of the ``attempts_lead_started`` index is
  overwritten in the file, as a bad sector under it would leave it, so
  SQLite answers "database disk image is malformed" on every read (and
  write) that needs the index: the hopper's daily-attempts screening and
  the write-ahead of a new call; writing the page back clears it.

After each: every outcome, disposition and DNC entry is in the store, no
lead is left held or dialing, the campaign dialed again without a restart,
and no call was placed while writes were failing, counted from Asterisk's
own events (an independent AMI listener), not from the daemon.

Disposition keys are put on the daemon's queue as the ``AgentKey`` events
the dialplan's key menu produces (the key path has its own real-Asterisk
test): here only the store is under test.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from dialerd.core import events as ev
from dialerd.core.models import CallState
from dialerd.daemon import Daemon
from dialerd.sandbox.recorder import AmiRecorder
from dialerd.sandbox.scenario import (
    ANSWER,
    BUSY,
    NO_ANSWER,
    login_agents,
    running,
    sim_campaign,
    sim_number,
    write_config,
)
from dialerd.settings import Settings, load_settings
from dialerd.store import store_session

pytestmark = pytest.mark.asterisk


# --------------------------------------------------------------- helpers


async def until(pred: Callable[[], Awaitable[bool] | bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = pred()
        if isinstance(got, Awaitable):
            got = await got
        if got:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def originates(rec: AmiRecorder, run_id: str) -> list[tuple[float, str]]:
    """(time, attempt id) of every call the daemon placed, from Asterisk's
    Newchannel events (the attempt id is the channel's Uniqueid)."""
    return [
        (s.at, s.get("Uniqueid"))
        for s in rec.named("Newchannel")
        if s.get("Uniqueid").startswith(run_id) and ";" not in s.get("Uniqueid")
    ]


class Health:
    """When the daemon's core was told the store is down, sampled."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.spans: list[list[float]] = []  # [down_at, up_at or inf]
        self.reasons: list[str] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            down = self.daemon.core.store_down
            if down is not None and (not self.spans or self.spans[-1][1] != float("inf")):
                self.spans.append([time.time(), float("inf")])
                self.reasons.append(down)
            elif down is None and self.spans and self.spans[-1][1] == float("inf"):
                self.spans[-1][1] = time.time()
            await asyncio.sleep(0.02)

    def __enter__(self) -> Health:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *_: object) -> None:
        assert self._task is not None
        self._task.cancel()


async def seed(settings: Settings, campaign: str, rows: list[tuple[str, int]]) -> None:
    """Leads (phone, priority), due now."""
    async with store_session(settings) as st:
        await st.ensure_campaign(campaign)
        await st.insert_leads(campaign, [(p, pr, None, "{}") for p, pr in rows], time.time() - 5)


async def final_check(settings: Settings, campaign: str, rec: AmiRecorder, run_id: str) -> Any:
    """After the daemon stopped: every attempt finished with an outcome, no
    lead held or dialing, one channel per attempt in Asterisk."""
    async with store_session(settings) as st:
        attempts = await st.report_attempts(campaign, None, None)
        leads = await st.query_leads(campaign)
        dnc = await st.dnc_entries()
    assert attempts and all(a.state == "done" and a.outcome for a in attempts), [
        (a.id, a.state) for a in attempts if a.state != "done"
    ]
    assert not [ld.id for ld in leads if ld.held], "a lead was left held"
    assert not [ld.id for ld in leads if ld.status.value == "dialing"], "a lead left dialing"
    made = Counter(aid for _at, aid in originates(rec, run_id))
    assert set(made) == {a.id for a in attempts}, "attempt log and Asterisk's channels differ"
    assert all(n == 1 for n in made.values()), "an attempt was originated twice"
    return attempts, leads, dnc


def placed_between(rec: AmiRecorder, run_id: str, t0: float, t1: float) -> list[str]:
    return [aid for at, aid in originates(rec, run_id) if t0 <= at <= t1]


@asynccontextmanager
async def dialing(
    sb: Any, tmp: Path, name: str, agents: list[str], store_dir: Path, **camp: Any
) -> AsyncIterator[tuple[Daemon, AmiRecorder, Settings]]:
    cfg = write_config(
        tmp,
        sb.ami_user,
        {name: sim_campaign(agents, **camp)},
        store={"path": str(store_dir / "dialerd.sqlite3")},
        drain_timeout_s=20,
    )
    settings = load_settings(cfg)
    yield_settings = settings
    rec = await AmiRecorder.connect(sb.harness_user)
    try:
        await login_agents(rec, agents)
        daemon = Daemon(settings)
        yield daemon, rec, yield_settings
    finally:
        rec.close()


def checkpoint(path: Path) -> None:
    """Everything in the WAL copied into the database file and the WAL
    emptied (retried while the daemon's connection reads). Blocking: call it
    through ``asyncio.to_thread``, or the daemon's own read, waiting for the
    event loop with its statement open, would keep the checkpoint busy for
    as long as the loop is blocked (a deadlock seen in a CI-style run)."""
    c = sqlite3.connect(path, isolation_level=None, timeout=10)
    try:
        for _ in range(100):
            busy, log, done = c.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if busy == 0 and log == done:
                return
            time.sleep(0.05)
        raise AssertionError("the WAL could not be checkpointed")
    finally:
        c.close()


# ------------------------------------------------- a lock held by another process

HOLD_LOCK_S = 12.0  # past the store's 5 s busy timeout, twice


async def test_a_write_lock_held_by_another_process_stops_dialing_until_released(
    asterisk_sandbox: Any, tmp_path: Path
) -> None:
    agents = ["3101", "3102", "3103"]
    rows = [(sim_number(3100 + i, ANSWER if i % 3 else BUSY, 1, 2), 0) for i in range(24)]
    async with dialing(asterisk_sandbox, tmp_path, "locked", agents, tmp_path, wrap_up_s=0.5) as (
        daemon,
        rec,
        settings,
    ):
        await seed(settings, "locked", rows)
        db = Path(settings.store.path)
        with Health(daemon) as health:
            async with running(daemon, started_s=30):
                await until(lambda: len(originates(rec, daemon.run_id)) >= 4, 60, "4 dials")
                # the holder says when it holds the lock and when it lets go
                # (its own clock, before the ROLLBACK: nothing can be written
                # before then), so a call placed the instant it let go is
                # not counted against the daemon
                holder = subprocess.Popen(
                    [
                        sys.executable,
                        "-c",
                        "import sqlite3, sys, time\n"
                        "c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)\n"
                        "c.execute('BEGIN IMMEDIATE')\n"
                        "print(time.time(), flush=True)\n"
                        "time.sleep(float(sys.argv[2]))\n"
                        "print(time.time(), flush=True)\n"
                        "c.execute('ROLLBACK')\n",
                        str(db),
                        str(HOLD_LOCK_S),
                    ],
                    stdout=subprocess.PIPE,
                    text=True,
                )
                try:
                    assert holder.stdout is not None
                    locked_at = float(await asyncio.to_thread(holder.stdout.readline))
                    released_at = float(await asyncio.to_thread(holder.stdout.readline))
                    assert await asyncio.to_thread(holder.wait, 30) == 0
                finally:
                    if holder.poll() is None:
                        holder.kill()
                await until(
                    lambda: bool(placed_between(rec, daemon.run_id, released_at, float("inf"))),
                    60,
                    "dialing to resume without a restart",
                )
                resumed = placed_between(rec, daemon.run_id, released_at, float("inf"))
                first = min(at for at, aid in originates(rec, daemon.run_id) if aid in resumed)
                print(f"\nlock released -> first dial after {first - released_at:.2f} s")

                async def all_done() -> bool:
                    async with store_session(settings) as st:
                        return (await st.lead_counts("locked")).get("done", 0) == len(rows)

                await until(all_done, 180, "every lead to finish")
        assert health.spans, "the core was never told the store was down"
        assert any("locked" in r for r in health.reasons), health.reasons
        # a write-ahead committed just before the lock was taken may still
        # have its Originate on the way (Newchannel comes within ms)
        assert not placed_between(rec, daemon.run_id, locked_at + 0.3, released_at), (
            "a call was placed while the store could not write"
        )
        await final_check(settings, "locked", rec, daemon.run_id)


# --------------------------------------------------------------- a full disk

TMPFS_SIZE = "16m"


@contextlib.contextmanager
def small_disk(where: Path) -> Iterator[Path]:
    where.mkdir()
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        reason = f"cannot mount a tmpfs for the full-disk test: {r.stderr.strip()}"
        if os.environ.get("CI", "").lower() in {"true", "1", "yes"}:
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(disk: Path) -> Path:
    """Fill the file system to the last byte; the filler's path."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as f:
        for chunk in (1 << 16, 4096, 512, 1):
            with contextlib.suppress(OSError):
                while True:
                    f.write(b"\0" * chunk)
    return filler


async def hang_up_customer(rec: AmiRecorder, phone: str) -> None:
    """The customer hangs up (both halves of their Local channel)."""
    digits = phone.lstrip("+")
    await rec.action(
        {"Action": "Hangup", "Channel": f"/^Local\\/{digits}@sim-customers-/", "Cause": "16"}
    )


@pytest.mark.parametrize("hold_s", [1.0, 60.0], ids=["1s", "60s"])
async def test_a_full_disk_while_answered_calls_end_with_dispositions(
    asterisk_sandbox: Any, tmp_path: Path, hold_s: float
) -> None:
    agents = ["3201", "3202", "3203"]
    base = 3200 if hold_s < 10 else 3300
    # three long calls first (highest priority), one per agent; then more
    talkers = [sim_number(base + i, ANSWER, 1, 90) for i in range(3)]
    rest = [sim_number(base + 10 + i, (ANSWER, BUSY, NO_ANSWER)[i % 3], 1, 2) for i in range(12)]
    keys = {"do_not_call": "5", "sale": "1", "callback": "3"}
    with small_disk(tmp_path / "disk") as disk:
        async with dialing(
            asterisk_sandbox,
            tmp_path,
            "full",
            agents,
            disk,
            wrap_up_s=1.0,
        ) as (daemon, rec, settings):
            await seed(settings, "full", [(p, 10) for p in talkers] + [(p, 0) for p in rest])
            db = Path(settings.store.path)
            with Health(daemon) as health:
                async with running(daemon, started_s=30):

                    def talking() -> list[Any]:
                        return [
                            c for c in daemon.core.calls.values()
                            if c.state is CallState.CONNECTED and c.lead.phone in talkers
                        ]  # fmt: skip

                    await until(lambda: len(talking()) == 3, 60, "the three long calls talking")
                    by_code: dict[str, Any] = {}
                    for call, (code, key) in zip(talking(), keys.items(), strict=True):
                        by_code[code] = call
                        assert call.agent_id is not None
                        # pressed while talking: applied when the call ends
                        daemon.put(ev.AgentKey(time.time(), call.agent_id, key, "", ""))
                    await until(
                        lambda: all(
                            daemon.core.agents[c.agent_id].pending_dispo for c in by_code.values()
                        ),
                        10,
                        "the dispositions pressed",
                    )
                    # all three agents talk: no call is being placed now
                    assert not daemon.core.campaigns["full"].dialing
                    await asyncio.to_thread(checkpoint, db)
                    full_at = time.time()
                    filler = fill(disk)
                    for call in by_code.values():
                        await hang_up_customer(rec, call.lead.phone)
                    await until(lambda: daemon.core.store_down is not None, 10, "store down")
                    await until(
                        lambda: (
                            not [c for c in daemon.core.calls.values() if c.lead.phone in talkers]
                        ),
                        10,
                        "the three calls ended",
                    )
                    owed = daemon.writer.pending
                    await asyncio.sleep(max(0.0, full_at + hold_s - time.time()))
                    assert daemon.writer.down_reason is not None, (
                        "the store came back on a full disk"
                    )
                    assert daemon.writer.pending >= owed > 0, "an owed write was dropped"
                    cleared_at = time.time()
                    filler.unlink()
                    await until(lambda: daemon.core.store_down is None, 30, "the store up again")
                    up_at = time.time()
                    await until(
                        lambda: bool(placed_between(rec, daemon.run_id, cleared_at, float("inf"))),
                        60,
                        "dialing to resume without a restart",
                    )
                    first = min(at for at, _ in originates(rec, daemon.run_id) if at >= cleared_at)
                    print(
                        f"\ndisk full {hold_s:.0f} s, {owed} writes owed; cleared -> store up "
                        f"in {up_at - cleared_at:.2f} s, first dial in {first - cleared_at:.2f} s"
                    )

                    async def all_done() -> bool:
                        async with store_session(settings) as st:
                            counts = await st.lead_counts("full")
                        return (
                            counts.get("dialing", 0) == 0
                            and counts.get("new", 0) == 0
                            and (counts.get("done", 0) >= len(rest))
                        )

                    await until(all_done, 120, "the rest of the campaign")
            assert not placed_between(rec, daemon.run_id, full_at, cleared_at), (
                "a call was placed while the store could not write"
            )
            assert any("full" in r for r in health.reasons), health.reasons
            attempts, leads, dnc = await final_check(settings, "full", rec, daemon.run_id)
            by_id = {a.id: a for a in attempts}
            lead_by_id = {ld.id: ld for ld in leads}
            for code, call in by_code.items():
                a = by_id[call.attempt_id]
                assert (a.outcome, a.disposition) == ("answered", code), (code, a)
            dnc_lead = lead_by_id[by_code["do_not_call"].lead.id]
            assert ("full", dnc_lead.phone, "disposition:do_not_call") in dnc
            assert dnc_lead.status.value == "done" and dnc_lead.final_reason == "dispo_do_not_call"
            cb = lead_by_id[by_code["callback"].lead.id]
            assert cb.status.value == "retry", "the callback was lost"
            sale = lead_by_id[by_code["sale"].lead.id]
            assert sale.status.value == "done" and sale.final_reason == "dispo_sale"


# ------------------------------------------------------ a read that fails


def write_page(path: Path, index: str, data: bytes | None) -> bytes:
    """Overwrite the root page of ``index`` in the database file with
    ``data`` (None: garbage); returns what was there. Then a commit from
    another connection, so the daemon's connection drops its page cache and
    reads the file again."""
    c = sqlite3.connect(path, isolation_level=None, timeout=10)
    try:
        size = c.execute("PRAGMA page_size").fetchone()[0]
        root = c.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (index,)).fetchone()[
            0
        ]
        with path.open("r+b") as f:
            f.seek((root - 1) * size)
            old = f.read(size)
            f.seek((root - 1) * size)
            f.write(data if data is not None else b"\xff" * size)
        c.execute("INSERT OR REPLACE INTO store_probe (id, at, pad) VALUES (1, 0, x'00')")
        return old
    finally:
        c.close()


async def test_a_read_failing_on_a_corrupt_index_page_stops_dialing_until_repaired(
    asterisk_sandbox: Any, tmp_path: Path
) -> None:
    agents = ["3401", "3402", "3403"]
    rows = [(sim_number(3400 + i, ANSWER if i % 4 else BUSY, 1, 2), 0) for i in range(30)]
    index = "attempts_lead_started"
    async with dialing(asterisk_sandbox, tmp_path, "corrupt", agents, tmp_path, wrap_up_s=0.5) as (
        daemon,
        rec,
        settings,
    ):
        await seed(settings, "corrupt", rows)
        db = Path(settings.store.path)
        with Health(daemon) as health:
            async with running(daemon, started_s=30):
                await until(lambda: len(originates(rec, daemon.run_id)) >= 5, 60, "5 dials")
                await asyncio.to_thread(checkpoint, db)
                good = await asyncio.to_thread(write_page, db, index, None)
                broken_at = time.time()
                await until(lambda: daemon.core.store_down is not None, 30, "store down")
                await asyncio.sleep(5.0)
                assert daemon.core.store_down is not None, "up again on a corrupt index"
                await asyncio.to_thread(write_page, db, index, good)
                repaired_at = time.time()
                await until(
                    lambda: bool(placed_between(rec, daemon.run_id, repaired_at, float("inf"))),
                    60,
                    "dialing to resume without a restart",
                )
                first = min(at for at, _ in originates(rec, daemon.run_id) if at >= repaired_at)
                print(f"\nindex page repaired -> first dial after {first - repaired_at:.2f} s")

                async def all_done() -> bool:
                    async with store_session(settings) as st:
                        return (await st.lead_counts("corrupt")).get("done", 0) == len(rows)

                await until(all_done, 180, "every lead to finish")
        assert any("malformed" in r for r in health.reasons), health.reasons
        # the page is read by the first dial or screening after the break;
        # a write-ahead committed just before it may still ring
        assert not placed_between(rec, daemon.run_id, broken_at + 0.5, repaired_at), (
            "a call was placed while the store could not read"
        )
        await final_check(settings, "corrupt", rec, daemon.run_id)
