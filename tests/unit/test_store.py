"""The store contract, run on every backend (the ``store`` fixture of
tests/conftest.py, one run per ``dialerd.sandbox.stores.STORE_BACKENDS``:
today SQLite): hopper, write-ahead attempts, agents,
import. Then what only the SQLite backend has: its migrations and its query
plan, on a real file."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

import aiosqlite
import pytest

from dialerd.core.commands import PlaceCall, RecordOutcome
from dialerd.core.models import LeadStatus, LeadUpdate, Outcome
from dialerd.sandbox.stores import StoreBackend
from dialerd.store import open_store
from dialerd.store.api import LeadNotDialableError
from dialerd.store.sqlite import HOPPER_SQL, Store
from dialerd.store.sqlite.migrations import SchemaTooNewError, upgrade_table

C = "sales"
T0 = 1_700_000_000.0


@pytest.fixture
async def store(store: Store) -> Store:
    """The conftest's empty store (one per backend), with campaign ``C``."""
    await store.ensure_campaign(C)
    return store


def row(phone: str, priority: int = 0, **fields: str) -> tuple[str, int, str | None, str]:
    return (phone, priority, None, json.dumps(fields))


async def add(store: Store, *rows: tuple[str, int, str | None, str], due: float = T0) -> list[int]:
    await store.insert_leads(C, list(rows), due)
    by_phone = {lead.phone: lead.id for lead in await store.list_leads(C)}
    return [by_phone[r[0]] for r in rows]


def call(lead_id: int, attempt_id: str, phone: str = "+442079460001") -> PlaceCall:
    return PlaceCall(
        attempt_id=attempt_id,
        campaign=C,
        lead_id=lead_id,
        phone=phone,
        channel=f"PJSIP/{phone[1:]}@trunk-out",
        caller_id="+442071234567",
        ring_timeout_s=25,
        started_at=T0 + 1,
    )


def outcome(
    lead_id: int, attempt_id: str, out: Outcome, status: LeadStatus, due: float | None = None
) -> RecordOutcome:
    return RecordOutcome(
        attempt_id=attempt_id,
        campaign=C,
        lead_id=lead_id,
        outcome=out,
        ended_at=T0 + 30,
        lead=LeadUpdate(lead_id, status, 1, out, next_due_at=due),
        cause=17 if out is Outcome.BUSY else 16,
    )


# ------------------------------------------------------------------ schema


async def test_foreign_keys_enforced(store: Store, store_backend: StoreBackend) -> None:
    with pytest.raises(store_backend.integrity_error):
        await store.insert_leads("no-such-campaign", [row("+442079460001")], T0)


# ------------------------------------------------------------------ hopper


async def test_hopper_orders_by_priority_then_due(store: Store) -> None:
    await store.insert_leads(C, [row("+442079460001", 0), row("+442079460002", 5)], T0 + 10)
    await store.insert_leads(C, [row("+442079460003", 0), row("+442079460004", 5)], T0)
    await store.insert_leads(C, [row("+442079460005", 9)], T0 + 1000)  # not yet due
    leads = await store.fetch_due_leads(C, now=T0 + 100, limit=10, exclude=frozenset())
    assert [x.phone[-1] for x in leads] == ["4", "2", "3", "1"]
    assert leads[0].fields == {} and leads[0].attempts == 0 and leads[0].campaign == C


async def test_hopper_never_returns_a_lead_twice(store: Store) -> None:
    await add(store, *(row(f"+4420794600{i:02d}") for i in range(10)))
    first = await store.fetch_due_leads(C, T0, 4, frozenset())
    second = await store.fetch_due_leads(C, T0, 100, frozenset())
    assert len(first) == 4 and len(second) == 6
    assert not {x.id for x in first} & {x.id for x in second}
    assert await store.fetch_due_leads(C, T0, 100, frozenset()) == []
    assert all(x.held for x in await store.list_leads(C))


async def test_hopper_concurrent_fetches_do_not_overlap(store: Store) -> None:
    await add(store, *(row(f"+4420794601{i:02d}") for i in range(50)))
    batches = await asyncio.gather(
        *(store.fetch_due_leads(C, T0, 7, frozenset()) for _ in range(10))
    )
    ids = [x.id for b in batches for x in b]
    assert len(ids) == 50 == len(set(ids))


async def test_hopper_respects_exclude_and_release(store: Store) -> None:
    a, b, c = await add(store, row("+442079460001"), row("+442079460002"), row("+442079460003"))
    got = await store.fetch_due_leads(C, T0, 2, frozenset({a}))
    assert [x.id for x in got] == [b, c]
    await store.release_leads([b])
    assert [x.id for x in await store.fetch_due_leads(C, T0, 5, frozenset())] == [a, b]
    assert await store.release_all_held() == 3
    assert len(await store.fetch_due_leads(C, T0, 5, frozenset())) == 3


async def test_hopper_skips_dialing_and_done(store: Store) -> None:
    a, b, _ = await add(store, row("+442079460001"), row("+442079460002"), row("+442079460003"))
    await store.begin_attempt(call(a, "att-a"))
    await store.begin_attempt(call(b, "att-b"))
    await store.finish_attempt(outcome(b, "att-b", Outcome.ANSWERED, LeadStatus.DONE))
    got = await store.fetch_due_leads(C, T0 + 1e6, 10, frozenset())
    assert [x.phone for x in got] == ["+442079460003"]


async def test_retry_comes_back_when_due(store: Store) -> None:
    [a] = await add(store, row("+442079460001"))
    await store.fetch_due_leads(C, T0, 1, frozenset())
    await store.begin_attempt(call(a, "att-1"))
    applied = await store.finish_attempt(
        outcome(a, "att-1", Outcome.BUSY, LeadStatus.RETRY, due=T0 + 600)
    )
    assert applied
    assert await store.fetch_due_leads(C, T0 + 599, 5, frozenset()) == []
    [again] = await store.fetch_due_leads(C, T0 + 600, 5, frozenset())
    assert (again.id, again.attempts) == (a, 1)


# ------------------------------------------------------------------ attempts


async def test_begin_attempt_is_committed_before_returning(
    store: Store, store_backend: StoreBackend
) -> None:
    [a] = await add(store, row("+442079460001"))
    await store.fetch_due_leads(C, T0, 1, frozenset())
    await store.begin_attempt(call(a, "att-1"))
    other = await store_backend.open()  # another connection sees it
    try:
        lead = await other.get_lead(a)
        assert lead is not None
        assert (lead.status, lead.held) == (LeadStatus.DIALING, False)
        [att] = await other.list_attempts(C)
        assert (att.id, att.state, att.outcome, att.phone) == ("att-1", "dialing", None, lead.phone)
        [open_] = await other.open_attempts()
        assert (open_.attempt_id, open_.lead_id, open_.started_at) == ("att-1", a, T0 + 1)
    finally:
        await other.close()


async def test_second_live_call_for_a_lead_is_refused(store: Store) -> None:
    [a] = await add(store, row("+442079460001"))
    await store.begin_attempt(call(a, "att-1"))
    with pytest.raises(LeadNotDialableError):
        await store.begin_attempt(call(a, "att-2"))
    assert [x.id for x in await store.list_attempts()] == ["att-1"]


async def test_finish_attempt_is_idempotent(store: Store) -> None:
    [a] = await add(store, row("+442079460001"))
    await store.begin_attempt(call(a, "att-1"))
    rec = outcome(a, "att-1", Outcome.ANSWERED, LeadStatus.DONE)
    rec = RecordOutcome(**{**{f: getattr(rec, f) for f in rec.__slots__}, "agent_id": "1001"})
    assert await store.finish_attempt(rec) is True
    late = outcome(a, "att-1", Outcome.INTERRUPTED, LeadStatus.RETRY, due=T0)
    assert await store.finish_attempt(late) is False
    assert (
        await store.finish_attempt(outcome(a, "unknown", Outcome.BUSY, LeadStatus.RETRY)) is False
    )
    lead = await store.get_lead(a)
    assert lead is not None
    assert (lead.status, lead.attempts, lead.last_outcome) == (LeadStatus.DONE, 1, "answered")
    [att] = await store.list_attempts(C)
    assert (att.state, att.outcome, att.agent_id, att.ended_at) == (
        "done",
        "answered",
        "1001",
        T0 + 30,
    )
    assert await store.open_attempts() == []
    assert await store.outcome_counts(C) == {"answered": 1}
    assert await store.lead_counts(C) == {"done": 1}


async def test_finish_attempt_rejects_mismatched_lead(store: Store) -> None:
    rec = outcome(1, "att", Outcome.BUSY, LeadStatus.RETRY)
    bad = RecordOutcome(**{**{f: getattr(rec, f) for f in rec.__slots__}, "lead_id": 2})
    with pytest.raises(ValueError, match="update for"):
        await store.finish_attempt(bad)


async def test_done_lead_with_final_reason(store: Store) -> None:
    [a] = await add(store, row("+442079460001"))
    await store.begin_attempt(call(a, "att-1"))
    rec = RecordOutcome(
        attempt_id="att-1",
        campaign=C,
        lead_id=a,
        outcome=Outcome.NO_ANSWER,
        ended_at=T0 + 30,
        lead=LeadUpdate(a, LeadStatus.DONE, 5, Outcome.NO_ANSWER, final_reason="max_attempts"),
    )
    assert await store.finish_attempt(rec)
    lead = await store.get_lead(a)
    assert lead is not None
    assert (lead.final_reason, lead.attempts, lead.next_due_at) == ("max_attempts", 5, T0)


# ------------------------------------------------------------------ agents, import


async def test_upsert_agent_state(store: Store) -> None:
    await store.upsert_agent_state("1001", C, "ready", T0)
    await store.upsert_agent_state("1001", None, "paused", T0 + 1)
    await store.upsert_agent_state("1002", C, "talking", T0 + 2)
    assert await store.list_agents() == [
        ("1001", None, "paused", T0 + 1),
        ("1002", C, "talking", T0 + 2),
    ]


async def test_insert_leads_counts_only_new_rows(store: Store) -> None:
    n = await store.insert_leads(
        C, [row("+442079460001"), row("+442079460002"), row("+442079460001")], T0
    )
    assert n == 2
    assert await store.insert_leads(C, [row("+442079460002"), row("+442079460003")], T0) == 1
    await store.ensure_campaign("other")
    assert await store.insert_leads("other", [row("+442079460001")], T0) == 1


# ------------------------------------------------- SQLite only: file and plan


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[Store]:
    s = cast(Store, await open_store(tmp_path / "d.sqlite3"))
    await s.ensure_campaign(C)
    yield s
    await s.close()


async def test_migrations_idempotent_on_reopen(tmp_path: Path) -> None:
    path = tmp_path / "d.sqlite3"
    s = await open_store(path)
    await s.ensure_campaign(C)
    await s.insert_leads(C, [row("+442079460001")], T0)
    await s.close()
    s = await open_store(path)  # second open: nothing re-applied, data kept
    assert await s.lead_counts(C) == {"new": 1}
    await s.close()
    async with aiosqlite.connect(path) as db:
        async with db.execute("SELECT version FROM schema_version ORDER BY version") as cur:
            versions = [r[0] for r in await cur.fetchall()]
        async with db.execute("PRAGMA journal_mode") as cur:
            mode = (await cur.fetchone() or [""])[0]
    assert versions == list(range(1, upgrade_table.latest + 1))
    assert mode == "wal"


async def test_refuses_a_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "d.sqlite3"
    await (await open_store(path)).close()
    async with aiosqlite.connect(path) as db:
        await db.execute(
            "INSERT INTO schema_version VALUES (?, 'from the future', 0)",
            (upgrade_table.latest + 1,),
        )
        await db.commit()
    with pytest.raises(SchemaTooNewError):
        await open_store(path)


async def test_hopper_uses_the_partial_index(sqlite_store: Store) -> None:
    await add(sqlite_store, *(row(f"+4420794602{i:02d}", i % 3) for i in range(30)))
    plan = " | ".join(await sqlite_store.explain(HOPPER_SQL, (C, T0, 10)))
    assert "USING INDEX leads_hopper" in plan, plan
    assert "TEMP B-TREE" not in plan, plan  # the index gives the order too
    assert not plan.startswith("SCAN"), plan
