"""What every store backend does the same way: rows to records, the
checks a call makes before it writes, and the parameters its statements
take. Pure (no I/O, no driver import), so SQLite and PostgreSQL answer
identically by construction, not by two copies kept in step.

The backends' statements differ only in their SQL dialect (``?`` against
``$1``, ``rowid`` against ``seq``, ``0/1`` against booleans); the values
they bind, in the order they bind them, are built here. A row is anything
indexable in the column order of the ``*_COLS`` constants (a SQLite tuple,
an asyncpg ``Record``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from dialerd.core.commands import RecordDisposition, RecordInbound, RecordOutcome
from dialerd.core.models import Lead, LeadStatus
from dialerd.store.api import StoredAttempt, StoredInbound, StoredLead, StoreError

#: the columns :func:`stored_lead` reads, in its order
LEAD_COLS = (
    "id, campaign, phone, priority, timezone, fields, status, attempts, next_due_at, held, "
    "last_outcome, final_reason"
)
#: the columns :func:`stored_attempt` reads, in its order
ATTEMPT_COLS = (
    "id, campaign, lead_id, phone, state, outcome, started_at, answered_at, connected_at, "
    "ended_at, agent_id, cause, detail, disposition"
)
#: the columns of ``inbound_calls``, in :func:`inbound_params`' and
#: :func:`stored_inbound`'s order
INBOUND_COLS = (
    "call_id, queue, did, caller, arrived_at, ended_at, outcome, wait_s, answered_at, "
    "agent_id, fallback, callback_campaign, cause, sl_within_s"
)
#: what ``inbound_calls`` reads: the row, and the agent's disposition
#: (written later, by ``dispose_inbound``), in :func:`stored_inbound`'s order
INBOUND_READ_COLS = INBOUND_COLS + ", disposition"
#: bytes the write probe (``check_writable``) writes: a few pages, as much as
#: an outcome writes, so that a disk with room for less fails the probe as it
#: would fail the outcome
PROBE_PAD = 12_288
#: the fields of a lead an agent keyed by hand
MANUAL_FIELDS = '{"source": "manual"}'
#: statuses ``reset_leads`` may put back to ``new``
RESETTABLE = frozenset({"done", "retry", "new"})
#: the DNC list key of the global list (NULL would defeat the primary key)
GLOBAL_DNC = ""


def due_lead(
    campaign: str,
    r: Sequence[Any],
    callback_agent: str | None = None,
    callback_until: float | None = None,
    callback: bool = False,
) -> Lead:
    """A lead for the core from a row that starts ``id, phone, attempts,
    priority, timezone, fields`` (the hopper's claims, ``manual_lead``)."""
    return Lead(
        id=r[0],
        campaign=campaign,
        phone=r[1],
        attempts=r[2],
        priority=r[3],
        timezone=r[4],
        fields=json.loads(r[5]),
        callback_agent=callback_agent,
        callback_until=callback_until,
        callback=callback,
    )


def stored_lead(r: Sequence[Any]) -> StoredLead:
    """A :class:`StoredLead` from a row of :data:`LEAD_COLS`."""
    return StoredLead(
        id=r[0],
        campaign=r[1],
        phone=r[2],
        priority=r[3],
        timezone=r[4],
        fields=json.loads(r[5]),
        status=LeadStatus(r[6]),
        attempts=r[7],
        next_due_at=r[8],
        held=bool(r[9]),
        last_outcome=r[10],
        final_reason=r[11],
    )


def stored_attempt(r: Sequence[Any]) -> StoredAttempt:
    """A :class:`StoredAttempt` from a row of :data:`ATTEMPT_COLS`."""
    return StoredAttempt(*r)


def dnc_entry(r: Sequence[Any]) -> tuple[str | None, str, str]:
    """(campaign or None for the global list, phone, source)."""
    return (r[0] or None, r[1], r[2])


def dnc_list(campaign: str | None) -> str:
    """The stored key of a DNC list: a campaign's name, or the global one."""
    return campaign or GLOBAL_DNC


def dnc_stamp(r: Sequence[Any] | None) -> tuple[float, ...]:
    """``dnc_stamp`` from (count, latest added_at, sum of row ids, sum of
    added_at); see the backends' ``dnc_stamp`` for why these four."""
    if r is None:
        return (0, 0.0, 0, 0.0)
    return (int(r[0]), float(r[1]), int(r[2]), float(r[3]))


def agent_timeline(
    before: Sequence[Sequence[Any]], during: Sequence[Sequence[Any]]
) -> list[tuple[str, str | None, str, float]]:
    """``agent_events``' answer: each agent's last event before the period
    (``before``), then the period's (``during``), by agent and time."""
    out = [(r[0], r[1], r[2], float(r[3])) for r in (*before, *during)]
    out.sort(key=lambda e: (e[0], e[3]))
    return out


def agent_action(r: Sequence[Any]) -> tuple[str, str | None, str, str, bool, float]:
    return (r[0], r[1], r[2], r[3], bool(r[4]), float(r[5]))


def login_counter(r: Sequence[Any]) -> tuple[str, str, float, float]:
    return (str(r[0]), str(r[1]), float(r[2]), float(r[3]))


def bounds(since: float | None, until: float | None) -> tuple[float, float]:
    """[since, until) with None as unbounded (every backend stores times as
    IEEE doubles, so infinities compare as they should)."""
    return (
        float("-inf") if since is None else since,
        float("inf") if until is None else until,
    )


def check_reset(status: Sequence[str]) -> None:
    """``reset_leads``' refusal, before anything is written."""
    if "dialing" in status:
        raise StoreError("leads that are dialing cannot be reset")
    bad = set(status) - RESETTABLE
    if bad or not status:
        raise StoreError(f"cannot reset leads of status {sorted(bad) or '(none)'}")


def outcome_params(
    rec: RecordOutcome,
) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """``finish_attempt``'s two statements' values: (the attempt's
    ``outcome, answered_at, connected_at, ended_at, agent_id, cause, detail,
    id, lead_id``; the lead's ``status, attempts, next_due_at, last_outcome,
    final_reason, updated_at, id``). Raises ``ValueError`` for another
    lead's update."""
    if rec.lead.lead_id != rec.lead_id:
        raise ValueError(f"outcome for lead {rec.lead_id} carries an update for {rec.lead.lead_id}")
    u = rec.lead
    attempt = (
        rec.outcome.value,
        rec.answered_at,
        rec.connected_at,
        rec.ended_at,
        rec.agent_id,
        rec.cause,
        rec.detail,
        rec.attempt_id,
        rec.lead_id,
    )
    lead = (
        u.status.value,
        u.attempts,
        u.next_due_at,
        u.last_outcome.value,
        u.final_reason,
        rec.ended_at,
        u.lead_id,
    )
    return attempt, lead


def disposition_params(
    d: RecordDisposition,
) -> tuple[tuple[Any, ...], tuple[Any, ...] | None]:
    """``record_disposition``'s lead update values (``status, attempts,
    next_due_at, final_reason, callback_at, callback_agent, callback_until,
    updated_at, id``) and its DNC row (``campaign, phone, source,
    added_at``; None: no DNC entry asked)."""
    u = d.lead
    callback = u.next_due_at if d.callback else None
    lead = (
        u.status.value,
        u.attempts,
        u.next_due_at,
        u.final_reason,
        callback,
        d.callback_agent,
        d.callback_until,
        d.at,
        d.lead_id,
    )
    if d.dnc is None:
        return lead, None
    key = GLOBAL_DNC if d.dnc == "global" else d.campaign
    return lead, (key, d.phone, f"disposition:{d.code}", d.at)


def inbound_params(c: RecordInbound, sl_within_s: int | None) -> tuple[Any, ...]:
    """``record_inbound``'s row, in :data:`INBOUND_COLS` order."""
    return (
        c.call_id,
        c.queue,
        c.did,
        c.caller,
        c.arrived_at,
        c.ended_at,
        c.outcome.value,
        c.wait_s,
        c.answered_at,
        c.agent_id,
        c.fallback,
        c.callback_campaign,
        c.cause,
        sl_within_s,
    )


def stored_inbound(r: Sequence[Any]) -> StoredInbound:
    """A :class:`StoredInbound` from a row of :data:`INBOUND_READ_COLS`."""
    return StoredInbound(*r)


def callback_fields(fields: dict[str, Any]) -> str:
    """The fields JSON of a lead ``callback_for_phone`` creates."""
    return json.dumps(fields, sort_keys=True)


def keeps_earlier_callback(status: str, callback_at: float | None, at: float) -> bool:
    """``callback_for_phone``: a lead already booked for a callback at or
    before ``at`` keeps it (a callback is brought forward, never pushed back)."""
    return status == "retry" and callback_at is not None and callback_at <= at
