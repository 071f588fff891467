"""The store as the daemon sees it. ``dialerd.store.db.Store`` implements it.

Kept as a Protocol so the daemon's wiring is typed against the contract and
tests of the daemon's logic can run on an in-memory SQLite without anything
else changing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from dialerd.core.commands import PlaceCall, RecordOutcome
from dialerd.core.models import Lead


@dataclass(frozen=True, slots=True)
class OpenAttempt:
    """An attempt left ``dialing``/``connected`` by a previous run."""

    attempt_id: str
    campaign: str
    lead_id: int
    started_at: float


class StoreApi(Protocol):
    async def close(self) -> None: ...

    async def ensure_campaign(self, name: str) -> None:
        """Create the campaign row if missing (leads reference it)."""

    async def fetch_due_leads(
        self, campaign: str, now: float, limit: int, exclude: frozenset[int]
    ) -> list[Lead]:
        """Due leads (status new/retry, next_due_at <= now), highest priority
        then earliest due first, from an index; marks them held (``hopper``)
        so a second fetch does not return them again."""

    async def release_leads(self, lead_ids: list[int]) -> None:
        """Undo ``fetch_due_leads`` for leads that will not be dialed."""

    async def release_all_held(self) -> int:
        """At start-up: no lead is held by a core that no longer exists."""

    async def begin_attempt(self, call: PlaceCall) -> None:
        """Write-ahead: the attempt row (state ``dialing``) and the lead's
        status ``dialing`` in one transaction, committed before returning."""

    async def finish_attempt(self, rec: RecordOutcome) -> bool:
        """The attempt's outcome and the lead's new state, in one transaction.

        Idempotent: applies only while the attempt is still ``dialing`` and
        returns whether it did (False: unknown or already finished)."""

    async def open_attempts(self) -> list[OpenAttempt]:
        """Attempts a crashed run left open (for reconciliation)."""
