"""The campaign's compliance settings and the checks ``check-config`` runs.
Pure: no I/O.

:class:`Compliance` is the YAML block ``compliance:`` of a campaign::

    compliance:
      schedule:
        hours:
          mon-fri: ["09:00-20:00"]
          sat: ["10:00-14:00"]
        holidays: [2026-12-25, 2027-01-01]
        timezone: null            # hours read in the callee's local time
      safe_harbor:
        seller: Acme Insurance
        callback_number: "+12025550143"
      ring_timeout_override: false   # allow ring_timeout_s under 15 s
      abandon_target_override: false  # allow abandon_target above 3 %
      agent_guaranteed: false        # true disables the 72-hour abandon lock
      ofcom_amd_fp_rate: 0.0         # share of AMD "machine" verdicts that were people
      max_attempts_per_day: 3
      recycle_after_days: 30
      recycle_reasons: [max_attempts_no_answer, max_attempts_busy]
      dispositions:
        - {code: sale, label: Sale, dtmf: "1", final: true, sale: true}
        - {code: callback, label: Call back, dtmf: "3", callback: true}
        - {code: do_not_call, label: Do not call, dtmf: "5", final: true, dnc: campaign}

The module imports the campaign model only for type checking: the campaign
model is meant to hold a ``compliance: Compliance`` field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from dialerd.phone import PhoneError, normalize
from dialerd.rules.abandon import AbandonLock
from dialerd.rules.dispositions import (
    DEFAULT_RECYCLE_REASONS,
    Disposition,
    check_attempt,
    check_codes,
    default_dispositions,
)
from dialerd.rules.dnc import DncList
from dialerd.rules.windows import (
    HORIZON_DAYS,
    LEGAL_WINDOW,
    Schedule,
    may_call,
    next_allowed,
    next_local_day_start,
    zones_for_lead,
)

if TYPE_CHECKING:
    from dialerd.campaign.model import Campaign

#: below this a ring timeout cuts customers off before they can answer
MIN_RING_TIMEOUT_S = 15
#: the FTC's and Ofcom's limit
MAX_ABANDON_TARGET = 0.03


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SafeHarbor(_Strict):
    """What the safe-harbor recording must say: who called and a number to
    call back (the recording itself is the campaign's ``safe_harbor_sound``)."""

    seller: str = Field(min_length=1, max_length=80)
    callback_number: str

    @field_validator("callback_number")
    @classmethod
    def _e164(cls, v: str) -> str:
        try:
            return normalize(v, None)
        except PhoneError as exc:
            raise ValueError(f"{exc} (write it with its country code, e.g. +1...)") from None


class Compliance(_Strict):
    schedule: Schedule = Field(default_factory=Schedule)
    safe_harbor: SafeHarbor | None = None
    ring_timeout_override: bool = False
    abandon_target_override: bool = False
    #: allow ``schedule.legal_window`` wider than the law's 08:00-21:00.
    #: SANDBOX/TEST ONLY: simulated numbers, tests that run at any hour
    legal_window_override: bool = False
    #: an agent is always there when a call is answered: the 72-hour lock
    #: on abandoned numbers does not apply to this campaign
    agent_guaranteed: bool = False
    ofcom_amd_fp_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    dispositions: list[Disposition] = Field(default_factory=default_dispositions)
    max_attempts_per_day: int | None = Field(default=None, ge=1, le=50)
    #: finished leads with a ``recycle_reasons`` final reason come back after this
    recycle_after_days: int | None = Field(default=None, ge=1, le=3650)
    recycle_reasons: list[str] = Field(default_factory=lambda: list(DEFAULT_RECYCLE_REASONS))

    @field_validator("dispositions")
    @classmethod
    def _dispositions(cls, v: list[Disposition]) -> list[Disposition]:
        return check_codes(v)


@dataclass(frozen=True, slots=True)
class Finding:
    level: Literal["error", "warning"]
    #: dotted path in the campaign file, e.g. ``compliance.schedule.hours``
    field: str
    message: str


def abandons_possible(campaign: Campaign) -> bool:
    """Every mode but preview can answer a call with no agent free."""
    return str(campaign.dial_mode.value) != "preview"


def check_campaign(campaign: Campaign, compliance: Compliance | None = None) -> list[Finding]:
    """Findings for ``check-config``; any ``error`` must stop the campaign.

    ``compliance`` defaults to ``campaign.compliance`` when the model has
    it, else to the defaults.
    """
    comp = compliance
    if comp is None:
        found = getattr(campaign, "compliance", None)
        comp = found if isinstance(found, Compliance) else Compliance()
    out: list[Finding] = []

    ring = campaign.ring_timeout_s
    if ring < MIN_RING_TIMEOUT_S:
        if comp.ring_timeout_override:
            out.append(
                Finding(
                    "warning",
                    "ring_timeout_s",
                    f"{ring} s is under {MIN_RING_TIMEOUT_S} s (allowed by ring_timeout_override): "
                    "customers may be cut off while they reach the phone",
                )
            )
        else:
            out.append(
                Finding(
                    "error",
                    "ring_timeout_s",
                    f"{ring} s is under {MIN_RING_TIMEOUT_S} s; set "
                    "compliance.ring_timeout_override: true to allow it",
                )
            )

    target = campaign.abandon_target
    if target > MAX_ABANDON_TARGET:
        level: Literal["error", "warning"] = "warning" if comp.abandon_target_override else "error"
        hint = (
            "(allowed by abandon_target_override)"
            if comp.abandon_target_override
            else "; set compliance.abandon_target_override: true to allow it"
        )
        out.append(
            Finding(
                level,
                "abandon_target",
                f"{target:.2%} is above the {MAX_ABANDON_TARGET:.0%} "
                f"the FTC and Ofcom allow {hint}",
            )
        )

    if abandons_possible(campaign):
        if comp.safe_harbor is None:
            out.append(
                Finding(
                    "error",
                    "compliance.safe_harbor",
                    f"dial mode {campaign.dial_mode.value} can abandon calls: give the seller's "
                    "name and a call-back number the safe-harbor message states",
                )
            )
        if comp.agent_guaranteed:
            out.append(
                Finding(
                    "warning",
                    "compliance.agent_guaranteed",
                    f"dial mode {campaign.dial_mode.value} can abandon calls, yet "
                    "agent_guaranteed disables the 72-hour lock on abandoned numbers",
                )
            )

    sched = comp.schedule
    if sched.legal_wider_than_law():
        if comp.legal_window_override:
            out.append(
                Finding(
                    "warning",
                    "compliance.schedule.legal_window",
                    f"{sched.legal_window} is wider than the law's 08:00-21:00 (allowed by "
                    "legal_window_override): SANDBOX/TEST ONLY, never for real numbers",
                )
            )
        else:
            out.append(
                Finding(
                    "error",
                    "compliance.schedule.legal_window",
                    f"{sched.legal_window} is wider than the law's 08:00-21:00 in the callee's "
                    "local time",
                )
            )
    lo, hi = LEGAL_WINDOW
    legal = f"{lo // 60:02d}:{lo % 60:02d}-{hi // 60:02d}:{hi % 60:02d}"
    for r in sched.looser_than_law():
        where = "the callee's" if sched.timezone is None else f"{sched.timezone}"
        out.append(
            Finding(
                "warning",
                "compliance.schedule.hours",
                f"{r} (in {where} time) reaches outside the legal {legal} in the callee's "
                "local time: calls are only placed inside it",
            )
        )
    if sched.never_open():
        out.append(
            Finding(
                "error",
                "compliance.schedule.hours",
                f"the schedule never opens inside the legal {legal} window: no call can be placed",
            )
        )

    if not any(d.dnc is not None for d in comp.dispositions):
        out.append(
            Finding(
                "warning",
                "compliance.dispositions",
                "no disposition puts a number on a do-not-call list: agents cannot record "
                "a customer's opt-out",
            )
        )
    return out


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
