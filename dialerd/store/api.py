"""The store's contract: every call the daemon and the CLI make, and the
records they get back. ``dialerd.store.sqlite.Store`` (SQLite, the default)
and ``dialerd.store.postgres.Store`` (PostgreSQL) implement it.

The daemon, the CLI and the reports are typed against :class:`StoreApi`,
never against a backend, so a second backend (PostgreSQL) is a new class
that passes the same tests, and nothing else changes.

What every backend promises:

- **Committed on return.** Each write method is one transaction, committed
  before its coroutine returns: once the ``await`` completes, a crash of the
  daemon does not undo it. A write that raises has written nothing.
- **Safe under concurrency.** The daemon starts many writes at once from
  tasks of its own; the backend serialises them (SQLite: one connection and
  a lock; PostgreSQL: a pool, each call one transaction), and a second
  process (the CLI, another daemon) may write at the same time.
- **Failures say whether time can mend them.** A failure of the store's
  state (locked, disk full, I/O error, the server gone) is an ``OSError``
  (PostgreSQL: :class:`StoreTransientError`) or SQLite's operational error,
  and the daemon retries it; anything else is the call's own
  (``dialerd.store.faults``).
- Reads see every write that returned before they were called.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from dialerd.core.commands import (
    AgentAction,
    PlaceCall,
    RecordDisposition,
    RecordInbound,
    RecordOutcome,
    SkipLead,
)
from dialerd.core.models import Lead, LeadStatus

#: a lead row for the importer: (phone E.164, priority, timezone, fields JSON)
LeadRow = tuple[str, int, str | None, str]


class StoreError(RuntimeError):
    pass


class StoreTransientError(StoreError, OSError):
    """The store's state failed the call, not the call itself (the
    connection to the server lost, the server shutting down, a lock
    timeout, a full disk): nothing was written, and the same call may work
    later. An ``OSError`` so that whoever retries I/O failures (the
    daemon's write queue) retries it; the driver's error is its
    ``__cause__``."""


class StoreUnavailableError(StoreError):
    """The store cannot be opened or read at start: the daemon does not
    start (``dialerd run`` exits with a one-line reason)."""


class LeadNotDialableError(StoreError):
    """``begin_attempt`` for a lead that is already dialing or done: the
    store refuses the second live call even if the core asked for it."""


@dataclass(frozen=True, slots=True)
class OpenAttempt:
    """An attempt left ``dialing``/``connected`` by a previous run."""

    attempt_id: str
    campaign: str
    lead_id: int
    started_at: float


@dataclass(frozen=True, slots=True)
class StoredLead:
    id: int
    campaign: str
    phone: str
    priority: int
    timezone: str | None
    fields: dict[str, Any]
    status: LeadStatus
    attempts: int
    next_due_at: float
    held: bool
    last_outcome: str | None
    final_reason: str | None


@dataclass(frozen=True, slots=True)
class StoredAttempt:
    id: str
    campaign: str
    lead_id: int
    phone: str
    state: str
    outcome: str | None
    started_at: float
    answered_at: float | None
    connected_at: float | None
    ended_at: float | None
    agent_id: str | None
    cause: int | None
    detail: str
    disposition: str | None = None


@dataclass(frozen=True, slots=True)
class PhoneLead:
    """A lead the store holds for a phone number (any campaign) and its
    last attempt, if it had one: what an inbound caller's screen pop shows."""

    lead: StoredLead
    last_attempt: StoredAttempt | None


@dataclass(frozen=True, slots=True)
class StoredInbound:
    """One row of ``inbound_calls`` (see ``StoreApi.record_inbound``)."""

    call_id: str
    queue: str
    did: str
    caller: str
    arrived_at: float
    ended_at: float
    outcome: str
    wait_s: float
    answered_at: float | None
    agent_id: str | None
    fallback: str | None
    callback_campaign: str | None
    cause: int | None
    sl_within_s: int | None
    #: the agent's disposition code, once given
    disposition: str | None = None


class StoreApi(Protocol):
    # ----------------------------------------------------------- lifecycle

    async def close(self) -> None:
        """Waits for the statement in flight, then closes; the store cannot
        be used afterwards."""

    async def ensure_campaign(self, name: str) -> None:
        """Create the campaign row if missing (leads reference it).
        Idempotent."""

    async def check_writable(self, now: float) -> None:
        """A small real write (a few pages, committed, of no meaning to any
        other table): raises what any write would raise while the store
        cannot record (locked, disk full, I/O error). The daemon calls it to
        learn that a store which failed writes again. Idempotent."""

    # ------------------------------------------------- the daemon: dialing

    async def fetch_due_leads(
        self, campaign: str, now: float, limit: int, exclude: frozenset[int]
    ) -> list[Lead]:
        """Up to ``limit`` due leads, in one transaction: due callbacks first
        (earliest ``callback_at``), then new/retry leads with
        ``next_due_at <= now`` by priority (highest first) and due time, from
        an index. They are marked held before the transaction commits, so
        no second fetch (from any process) returns them until they are
        dialed, skipped, released or finished. ``exclude`` is never
        returned. Not idempotent: each call takes more leads.
        ``limit <= 0`` returns ``[]`` and writes nothing."""

    async def release_leads(self, lead_ids: list[int]) -> None:
        """Undo ``fetch_due_leads`` for leads that will not be dialed.
        Idempotent: a lead not held is left alone."""

    async def release_all_held(self) -> int:
        """At start-up: no lead is held by a core that no longer exists.
        Returns how many were released. Idempotent."""

    async def begin_attempt(self, call: PlaceCall) -> None:
        """Write-ahead, before the Originate: the attempt row (state
        ``dialing``, ``call.attempt_id``) and the lead's status ``dialing``,
        in one transaction committed before returning.

        Raises :class:`LeadNotDialableError` and writes nothing unless the
        lead is new/retry (a manual dial: unless it is not dialing), so two
        live calls for one lead can never both start; for the same reason
        a repeated call with the same attempt raises too."""

    async def finish_attempt(self, rec: RecordOutcome) -> bool:
        """The attempt's outcome and the lead's new state (status, attempts,
        next due time; hold and callback cleared), in one transaction.

        Idempotent: applies only while the attempt is still ``dialing`` and
        returns whether it did (False, nothing written: unknown or already
        finished), so a replayed hangup cannot count an outcome twice.
        Raises ``ValueError`` if ``rec.lead`` is another lead's update."""

    async def record_disposition(self, d: RecordDisposition) -> bool:
        """The agent's disposition on a *finished* attempt, the lead's new
        state (a callback gets its time, agent and grace) and the DNC entry
        it asks for, in one transaction.

        Returns False and writes nothing while the attempt is not finished:
        the caller writes the outcome first and retries the disposition.
        Idempotent: repeating it writes the same values again."""

    async def skip_lead(self, s: SkipLead) -> None:
        """Why the screening did not dial a lead (appended to the skip log on
        every call), and the lead postponed to ``s.retry_at`` (None:
        finished with the reason) and released, in one transaction. A lead
        that is no longer new/retry keeps its state."""

    async def attempts_since(self, lead_id: int, since: float) -> int:
        """Attempts of the lead started at or after ``since`` (daily caps)."""

    async def manual_lead(
        self, campaign: str, phone: str, timezone: str | None, now: float
    ) -> Lead | None:
        """The lead for a number an agent keyed: the campaign's own if it
        has one, else a new one (fields ``{"source": "manual"}``), held so
        the hopper leaves it alone; one transaction. None (nothing held)
        while that lead is dialing."""

    async def get_lead(self, lead_id: int) -> StoredLead | None: ...

    async def open_attempts(self) -> list[OpenAttempt]:
        """Attempts still ``dialing``, oldest first: after a crash or a lost
        AMI link, the calls to reconcile with what Asterisk has live."""

    # ------------------------------------------------- compliance, history

    async def dnc_entries(self) -> list[tuple[str | None, str, str]]:
        """Every DNC entry: (campaign or None for the global list, E.164,
        source), in insertion order."""

    async def dnc_stamp(self) -> tuple[float, ...]:
        """A value that changes whenever entries are added or removed
        (compare it with ``==``): cheap enough to poll for changes made by
        another process."""

    async def dnc_add(
        self, numbers: Sequence[str], campaign: str | None, source: str, now: float | None = None
    ) -> int:
        """Add numbers to a campaign's list (None: the global list), in one
        transaction; returns how many were new. Idempotent."""

    async def dnc_remove(self, numbers: Sequence[str], campaign: str | None) -> int:
        """Remove numbers from one list, in one transaction; returns how
        many were there. Idempotent."""

    async def recent_outcomes(self, since: float) -> list[tuple[str, str, str, float]]:
        """(campaign, phone, outcome, ended_at) of attempts ended since, in
        time order: seeds abandon accounting and the 72-hour lock."""

    # ------------------------------------------------------------ agents

    async def record_agent_event(
        self, agent_id: str, campaign: str | None, state: str, at: float
    ) -> None:
        """Append one agent state change (the core's state names) to the
        history reports read. Not idempotent: each call is one row."""

    async def record_agent_action(self, a: AgentAction) -> None:
        """Append an agent's key press and its verdict (the audit trail).
        Not idempotent: each call is one row."""

    async def agent_events(
        self, since: float | None = None, until: float | None = None
    ) -> list[tuple[str, str | None, str, float]]:
        """(agent_id, campaign, state, at) in [since, until), by agent and
        time; each agent's last event before ``since`` comes first, so the
        state an agent was in when the period began is known."""

    # --------------------------------------------------- agent PINs, limits

    async def pin_hash(self, agent_id: str) -> str | None:
        """The agent's PIN hash (``dialerd.agents.hash_pin``), or None."""

    async def set_pin_hash(self, agent_id: str, pin_hash: str, at: float) -> None:
        """Set (or replace) the agent's PIN hash; clears the agent id's
        wrong-PIN counter (an admin just gave a new PIN)."""

    async def pin_agents(self) -> list[str]:
        """The agent ids that have a PIN hash, sorted."""

    async def login_counters(
        self, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], tuple[float, float]]:
        """``{(scope, key): (level, last_at)}`` of the counters that exist
        among ``keys`` (``dialerd.login_limits``)."""

    async def all_login_counters(self) -> list[tuple[str, str, float, float]]:
        """(scope, key, level, last_at) of every counter, sorted."""

    async def save_login_counters(self, rows: Sequence[tuple[str, str, float, float]]) -> None:
        """Write (scope, key, level, last_at) rows, in one transaction."""

    async def clear_login_counters(self, keys: Sequence[tuple[str, str]]) -> int:
        """Delete these counters; returns how many existed."""

    async def known_phone(self, agent_id: str, phone: str, since: float) -> bool:
        """True if the agent logged in from ``phone`` at or after ``since``."""

    async def login_succeeded(
        self, agent_id: str, phone: str, at: float, clear: Sequence[tuple[str, str]]
    ) -> None:
        """Remember the phone as the agent's and clear ``clear`` counters,
        in one transaction."""

    # ------------------------------------------------------ the CLI: leads

    async def insert_leads(self, campaign: str, rows: Sequence[LeadRow], now: float) -> int:
        """One batch in one transaction, due at ``now``; returns how many
        were new. A phone already in the campaign is skipped, so re-running
        an import is safe (idempotent per campaign and phone)."""

    async def query_leads(
        self,
        campaign: str,
        status: Sequence[str] | None = None,
        limit: int | None = None,
        after_id: int = 0,
    ) -> list[StoredLead]:
        """Leads of a campaign in id order, optionally of some statuses;
        ``after_id`` pages through a large campaign."""

    async def attempts_of_leads(self, lead_ids: Sequence[int]) -> list[StoredAttempt]:
        """Attempts of the given leads, by lead then start time (the export).
        Read in chunks: not one snapshot while the daemon writes."""

    async def reset_leads(
        self,
        campaign: str,
        status: Sequence[str] = ("done",),
        reasons: Sequence[str] | None = None,
        now: float | None = None,
    ) -> tuple[int, int]:
        """Leads of these statuses (optionally these final reasons) back to
        ``new``, no attempts, due now, in one transaction. Leads held by a
        running daemon's hopper are left alone and counted. Returns (reset,
        held_skipped). Raises :class:`StoreError` (nothing written) for
        ``dialing`` or an unknown status. The attempt log is never touched."""

    async def set_callback(
        self, lead_id: int, at: float, agent: str | None = None, until: float | None = None
    ) -> bool:
        """A customer-chosen callback: due at ``at``, ahead of fresh leads;
        ``agent`` takes it until ``until``. False (nothing written) for an
        unknown lead or one dialing. Idempotent."""

    async def recycle_leads(
        self, campaign: str, reasons: Sequence[str], finished_before: float, now: float
    ) -> int:
        """Leads finished for one of ``reasons`` before ``finished_before``
        (not held) go back to ``new`` with no attempts, in one transaction;
        returns how many. The hopper's screening still stops a number put on
        a DNC list since."""

    # ---------------------------------------------------- the CLI: reports

    async def lead_counts(self, campaign: str) -> dict[str, int]:
        """Leads of a campaign by status."""

    async def list_leads(self, campaign: str) -> list[StoredLead]:
        """Every lead of a campaign in id order (small campaigns: reports,
        the test harness; ``query_leads`` pages through large ones)."""

    async def list_attempts(self, campaign: str | None = None) -> list[StoredAttempt]:
        """Every attempt (of one campaign, or all), by start time."""

    async def lead_skips(self, campaign: str) -> list[tuple[int, float, str, str, float | None]]:
        """(lead_id, at, reason, detail, retry_at) of every lead the screening
        refused, in time order: the audit of what was never dialed, and why."""

    async def agent_actions(
        self, agent_id: str | None = None
    ) -> list[tuple[str, str | None, str, str, bool, float]]:
        """(agent_id, campaign, action, detail, ok, at) of every key an agent
        pressed (of one agent, or all), oldest first."""

    async def outcome_counts(self, campaign: str) -> dict[str, int]:
        """Finished attempts of a campaign by outcome."""

    async def report_attempts(
        self, campaign: str | None, since: float | None, until: float | None
    ) -> list[StoredAttempt]:
        """Attempts (finished and live) started in [since, until), in start
        order; None: unbounded, every campaign."""

    async def campaign_names(self) -> list[str]:
        """Every campaign the store knows, sorted."""

    # ------------------------------------------------------------ inbound

    async def record_inbound(self, c: RecordInbound, sl_within_s: int | None = None) -> bool:
        """One inbound call's row in ``inbound_calls`` (``c.outcome``
        ``refused`` for an unknown DID, queue ""), with the queue's
        service-level target ``sl_within_s`` at the time. Idempotent: a
        second write of the same ``call_id`` changes nothing and returns
        False."""

    async def dispose_inbound(self, call_id: str, code: str, at: float) -> bool:
        """The agent's disposition of an inbound caller, on their row (the
        last one given wins); False when there is no such row."""

    async def inbound_calls(
        self, since: float | None = None, until: float | None = None
    ) -> list[StoredInbound]:
        """Inbound calls that arrived in [since, until) (None: unbounded), in
        arrival order."""

    async def leads_for_phone(self, phone: str, limit: int) -> list[PhoneLead]:
        """Up to ``limit`` leads of ``phone`` (E.164) in any campaign, the
        most recently touched first, each with its last attempt (None if it
        was never dialed)."""

    async def callback_for_phone(
        self, campaign: str, phone: str, at: float, now: float, fields: dict[str, Any]
    ) -> int | None:
        """A callback a caller asked for: the campaign's lead for ``phone``
        (created with ``fields`` if it has none) becomes a callback due at
        ``at``, as ``set_callback`` makes one, unless it already has an
        earlier one (kept: the callback is brought forward, never pushed
        back). One transaction; returns the lead id, or None (nothing
        written) while that lead is dialing. Idempotent."""
