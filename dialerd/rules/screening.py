"""Whether a lead may be dialed now: the ONE screening function.

The daemon's hopper loader runs it as leads come out of the store, and the
core runs it again just before each Originate (a DNC entry, an abandon or the
clock may have moved since). Both call :func:`screen_for_dial`, so the two
checks cannot drift apart. Pure: no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from dialerd.rules.abandon import AbandonLock
from dialerd.rules.dispositions import check_attempt, max_attempts_cap
from dialerd.rules.dnc import DncList
from dialerd.rules.windows import (
    HORIZON_DAYS,
    may_call,
    next_allowed,
    next_local_day_start,
    zones_for_lead,
)

if TYPE_CHECKING:
    from dialerd.campaign.model import Campaign, Compliance
    from dialerd.core.models import Lead


@dataclass(frozen=True, slots=True)
class Screen:
    """Whether a lead may be dialed now, and if not why and until when.

    ``reason`` is the code to record with the skipped lead (``ok``,
    ``dnc_global:<source>``, ``dnc_campaign:<source>``, ``max_attempts``,
    ``max_attempts_per_day``, ``abandon_lock``, ``no_timezone``,
    ``outside_legal_window``, ``outside_schedule``, ``holiday``,
    ``no_window``). ``retry_at``: when to look at the lead again (its
    ``next_due_at``); None with ``ok`` False: never, the lead is done.
    """

    ok: bool
    reason: str
    detail: str = ""
    retry_at: float | None = None


def screen_lead(
    *,
    campaign: str,
    phone: str,
    timezone: str | None,
    attempts: int,
    attempts_today: int,
    now: float,
    compliance: Compliance,
    dnc: DncList,
    lock: AbandonLock,
    max_total: int,
) -> Screen:
    """Every rule a lead must pass to be dialed at ``now``: run it when the
    hopper hands the lead out and again just before the Originate.

    Order: DNC and the attempt maximum (final), then the 72-hour abandon lock
    and the day's attempts (postponed), then the calling window; a postponed
    lead's ``retry_at`` is the first allowed instant after all of them.
    """
    blocked = dnc.is_blocked(campaign, phone)
    if blocked is not None:
        return Screen(False, blocked.partition(":")[0], blocked)
    if attempts >= max_total:
        return Screen(False, "max_attempts", f"{attempts} attempts of {max_total}")
    zones = zones_for_lead(phone, timezone)
    if not zones:
        why = f"time zone {timezone!r} unknown" if timezone else "the number's zone is unknown"
        return Screen(False, "no_timezone", why)
    earliest = now
    reason, detail = "", ""
    until = None if compliance.agent_guaranteed else lock.until(phone, now)
    if until is not None:
        earliest, reason, detail = until, "abandon_lock", "abandoned in the last 72 hours"
    limit = check_attempt(attempts, attempts_today, max_total, compliance.max_attempts_per_day)
    if not limit.ok:
        day = next_local_day_start(zones, now)
        if day > earliest:
            earliest = day
        if not reason:
            reason = limit.reason
            detail = f"{attempts_today} attempts today"
    if not reason:
        verdict = may_call(compliance.schedule, zones, now)
        if verdict.ok:
            return Screen(True, "ok")
        reason, detail = verdict.reason, verdict.detail
    at = next_allowed(compliance.schedule, zones, earliest)
    if at is None:
        # nothing in the horizon (a long holiday, a schedule that never
        # opens for these zones): look again then
        return Screen(
            False, reason, detail + "; no window in sight", earliest + HORIZON_DAYS * 86400
        )
    return Screen(False, reason, detail, at)


def attempts_cap(campaign: Campaign, lead: Lead) -> int:
    """The most attempts the lead may have: the highest retry or disposition
    maximum, and one more for a callback the customer asked for."""
    rules = campaign.retry
    cap = max_attempts_cap(
        [getattr(rules, f).max_attempts for f in type(rules).model_fields],
        campaign.compliance.dispositions,
    )
    return cap + 1 if lead.callback else cap


def screen_for_dial(
    campaign: Campaign,
    lead: Lead,
    now: float,
    *,
    dnc: DncList,
    lock: AbandonLock,
    attempts_today: int | None = None,
    manual: bool = False,
) -> Screen:
    """:func:`screen_lead` for one lead of ``campaign``.

    ``attempts_today`` defaults to the lead's own count (the hopper loader
    reads it from the store and passes it in). ``manual``: a number an agent
    keyed; a person chose to call, so the attempt limits do not apply (DNC,
    the 72-hour lock and calling hours do).
    """
    return screen_lead(
        campaign=campaign.name,
        phone=lead.phone,
        timezone=lead.timezone,
        attempts=0 if manual else lead.attempts,
        attempts_today=0
        if manual
        else (lead.attempts_today if attempts_today is None else attempts_today),
        now=now,
        compliance=campaign.compliance,
        dnc=dnc,
        lock=lock,
        max_total=1_000_000 if manual else attempts_cap(campaign, lead),
    )
