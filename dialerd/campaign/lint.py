"""The checks ``check-config`` runs on a campaign: errors stop it, warnings
are printed. Pure: no I/O. Kept apart from the schema (``campaign.model``)
because the schema says what a campaign file may hold, and this module says
which of those settings the law or common sense objects to."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from dialerd.campaign.model import Campaign, Compliance
from dialerd.rules.windows import LEGAL_WINDOW

#: below this a ring timeout cuts customers off before they can answer
MIN_RING_TIMEOUT_S = 15
#: the FTC's and Ofcom's limit
MAX_ABANDON_TARGET = 0.03


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
                    f"{ring} s is under {MIN_RING_TIMEOUT_S} s; lift "
                    "ring_timeout in dialerd.yaml legal_overrides to allow it (admin-owned)",
                )
            )

    target = campaign.abandon_target
    if target > MAX_ABANDON_TARGET:
        level: Literal["error", "warning"] = "warning" if comp.abandon_target_override else "error"
        hint = (
            "(allowed by abandon_target_override)"
            if comp.abandon_target_override
            else "; lift abandon_target in dialerd.yaml legal_overrides to allow it (admin-owned)"
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
