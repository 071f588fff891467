"""The store's inbound contract, on every backend (the ``store`` fixture):
one ``inbound_calls`` row per caller, callbacks booked for a caller's
number, and the leads of a number for a screen pop."""

from __future__ import annotations

import json
from typing import Any

import pytest

from dialerd.core.commands import PlaceCall, RecordInbound, RecordOutcome
from dialerd.core.models import InboundOutcome, LeadStatus, LeadUpdate, Outcome
from dialerd.sandbox.stores import StoreBackend
from dialerd.store.api import StoreApi
from dialerd.store.postgres import Store as PgStore
from dialerd.store.sqlite import Store

C = "sales"
T0 = 1_700_000_000.0
PHONE = "+442079460001"


@pytest.fixture
async def store(store: StoreApi) -> StoreApi:
    await store.ensure_campaign(C)
    await store.ensure_campaign("other")
    return store


def rec(call_id: str = "1700000050.77", **over: Any) -> RecordInbound:
    base: dict[str, Any] = {
        "call_id": call_id,
        "queue": "support",
        "did": "+442071234567",
        "caller": PHONE,
        "arrived_at": T0,
        "ended_at": T0 + 95.5,
        "outcome": InboundOutcome.ANSWERED,
        "wait_s": 12.25,
        "answered_at": T0 + 12.25,
        "agent_id": "1001",
    }
    base.update(over)
    return RecordInbound(**base)


async def test_record_inbound_writes_one_row_with_every_column(store: StoreApi) -> None:
    assert await store.record_inbound(rec(), 20) is True
    # a replay changes nothing
    assert await store.record_inbound(rec(outcome=InboundOutcome.ABANDONED), 20) is False
    fb = rec(
        "1700000051.1",
        arrived_at=T0 + 10,
        outcome=InboundOutcome.CALLBACK,
        answered_at=None,
        agent_id=None,
        fallback="max_wait",
        callback_campaign=C,
        cause=16,
    )
    await store.record_inbound(fb, 30)
    refused = rec(
        "1700000052.1",
        queue="",
        caller="",
        arrived_at=T0 + 20,
        ended_at=T0 + 20,
        outcome=InboundOutcome.REFUSED,
        wait_s=0.0,
        answered_at=None,
        agent_id=None,
    )
    await store.record_inbound(refused)
    rows = await store.inbound_calls()
    assert [r.call_id for r in rows] == ["1700000050.77", "1700000051.1", "1700000052.1"]
    a, b, c = rows
    assert (a.outcome, a.wait_s, a.answered_at, a.agent_id, a.sl_within_s) == (
        "answered",
        12.25,
        T0 + 12.25,
        "1001",
        20,
    )
    assert (b.outcome, b.fallback, b.callback_campaign, b.cause, b.sl_within_s) == (
        "callback",
        "max_wait",
        C,
        16,
        30,
    )
    assert (c.outcome, c.queue, c.caller, c.sl_within_s) == ("refused", "", "", None)
    assert [r.call_id for r in await store.inbound_calls(T0 + 5, T0 + 20)] == ["1700000051.1"]


async def test_the_table_has_the_columns_reports_query(store: StoreApi) -> None:
    if isinstance(store, PgStore):
        rows = await store._fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_name = "
            "'inbound_calls' AND table_schema = current_schema() ORDER BY ordinal_position"
        )
        cols = [r[0] for r in rows]
    else:
        assert isinstance(store, Store)
        async with store._conn.execute("PRAGMA table_info(inbound_calls)") as cur:
            cols = [r[1] for r in await cur.fetchall()]
    assert cols == [
        "call_id",
        "queue",
        "did",
        "caller",
        "arrived_at",
        "ended_at",
        "outcome",
        "wait_s",
        "answered_at",
        "agent_id",
        "fallback",
        "callback_campaign",
        "cause",
        "sl_within_s",
        "disposition",
        "disposed_at",
    ]


async def test_an_unknown_outcome_is_refused_by_the_schema(
    store: StoreApi, store_backend: StoreBackend
) -> None:
    assert isinstance(store, Store | PgStore)
    with pytest.raises(store_backend.integrity_error):
        async with store._tx() as db:
            await db.execute(
                "INSERT INTO inbound_calls (call_id, queue, did, caller, arrived_at, ended_at, "
                "outcome, wait_s) VALUES ('x', 'q', '+1', '', 0, 0, 'lost', 0)"
            )


async def test_callback_for_a_new_number_creates_a_due_callback_lead(store: StoreApi) -> None:
    fields = {"source": "inbound", "queue": "support", "call_id": "1.2"}
    lead_id = await store.callback_for_phone(C, PHONE, T0 + 3600, T0, fields)
    assert lead_id is not None
    lead = await store.get_lead(lead_id)
    assert lead is not None and lead.phone == PHONE and lead.campaign == C
    assert lead.status is LeadStatus.RETRY and lead.next_due_at == T0 + 3600
    assert lead.fields == fields
    # not due before its time, then first in line, as a callback
    assert await store.fetch_due_leads(C, T0 + 3599, 10, frozenset()) == []
    (due,) = await store.fetch_due_leads(C, T0 + 3600, 10, frozenset())
    assert due.id == lead_id and due.callback is True
    # idempotent: the same request again gives the same lead
    await store.release_leads([lead_id])
    assert await store.callback_for_phone(C, PHONE, T0 + 3600, T0, fields) == lead_id
    assert len(await store.list_leads(C)) == 1


async def test_callback_is_brought_forward_never_pushed_back(store: StoreApi) -> None:
    await store.insert_leads(C, [(PHONE, 5, None, json.dumps({"name": "Ada"}))], T0)
    (lead,) = await store.list_leads(C)
    assert await store.callback_for_phone(C, PHONE, T0 + 7200, T0, {}) == lead.id
    got = await store.get_lead(lead.id)
    assert got is not None and got.next_due_at == T0 + 7200
    assert got.fields == {"name": "Ada"}  # the lead's own fields are kept
    # earlier: brought forward
    assert await store.callback_for_phone(C, PHONE, T0 + 3600, T0, {}) == lead.id
    got = await store.get_lead(lead.id)
    assert got is not None and got.next_due_at == T0 + 3600
    # later: the earlier one stands
    assert await store.callback_for_phone(C, PHONE, T0 + 9000, T0, {}) == lead.id
    got = await store.get_lead(lead.id)
    assert got is not None and got.next_due_at == T0 + 3600


async def test_callback_for_a_finished_lead_reopens_it_and_not_while_dialing(
    store: StoreApi,
) -> None:
    await store.insert_leads(C, [(PHONE, 0, None, "{}")], T0)
    (lead,) = await store.list_leads(C)
    place = PlaceCall("a-1", C, lead.id, PHONE, "PJSIP/x@t", "+442071234567", 20, started_at=T0)
    await store.begin_attempt(place)
    assert await store.callback_for_phone(C, PHONE, T0 + 60, T0, {}) is None
    got = await store.get_lead(lead.id)
    assert got is not None and got.status is LeadStatus.DIALING
    upd = LeadUpdate(lead.id, LeadStatus.DONE, 1, Outcome.BUSY, None, "max_attempts")
    await store.finish_attempt(RecordOutcome("a-1", C, lead.id, Outcome.BUSY, T0 + 5, upd))
    assert await store.callback_for_phone(C, PHONE, T0 + 60, T0 + 10, {}) == lead.id
    got = await store.get_lead(lead.id)
    assert got is not None and got.status is LeadStatus.RETRY and got.final_reason is None


async def test_leads_for_phone_across_campaigns_with_their_last_attempt(store: StoreApi) -> None:
    await store.insert_leads(C, [(PHONE, 0, None, json.dumps({"name": "Ada"}))], T0)
    await store.insert_leads("other", [(PHONE, 0, None, "{}")], T0)
    await store.insert_leads(C, [("+442079460002", 0, None, "{}")], T0)
    (mine,) = [ld for ld in await store.list_leads(C) if ld.phone == PHONE]
    for n, at in ((1, T0 + 10), (2, T0 + 500)):
        place = PlaceCall(f"a-{n}", C, mine.id, PHONE, "PJSIP/x@t", "+4420", 20, started_at=at)
        await store.begin_attempt(place)
        upd = LeadUpdate(mine.id, LeadStatus.RETRY, n, Outcome.BUSY, at + 3600)
        await store.finish_attempt(RecordOutcome(f"a-{n}", C, mine.id, Outcome.BUSY, at + 5, upd))
    found = await store.leads_for_phone(PHONE, 10)
    assert sorted(p.lead.campaign for p in found) == ["other", C]
    by_campaign = {p.lead.campaign: p for p in found}
    last = by_campaign[C].last_attempt
    assert last is not None and last.id == "a-2" and last.outcome == "busy"
    assert by_campaign[C].lead.fields == {"name": "Ada"}
    assert by_campaign["other"].last_attempt is None
    assert len(await store.leads_for_phone(PHONE, 1)) == 1
    assert await store.leads_for_phone(PHONE, 0) == []
    assert await store.leads_for_phone("+15555550100", 10) == []


async def test_leads_for_phone_uses_its_index(store: StoreApi) -> None:
    if isinstance(store, PgStore):
        async with store._tx() as db:
            await db.execute("SET LOCAL enable_seqscan = off")  # a tiny table: force the choice
            plan = [
                r[0] for r in await db.fetch("EXPLAIN SELECT id FROM leads WHERE phone = $1", PHONE)
            ]
    else:
        assert isinstance(store, Store)
        plan = await store.explain("SELECT id FROM leads WHERE phone = ?", (PHONE,))
    assert any("leads_phone" in p for p in plan), plan
