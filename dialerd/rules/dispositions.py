"""Agent dispositions and attempt limits: per-campaign codes and what each
does to the lead. Pure: no I/O, no clock.

Flow: a live call ends with ``Outcome.ANSWERED`` and the retry rules
(:func:`dialerd.rules.retry.decide`) mark the lead done (``answered``) with
its attempt counted. The agent's disposition (a DTMF key in the room, or the
API) then gives :func:`decide_disposition` the final word: done, a retry by
the disposition's own rule, a callback at a time, and whether the number goes
on a do-not-call list.

This module deliberately does not import :mod:`dialerd.campaign.model`: the
campaign model's :class:`~dialerd.campaign.model.Compliance` holds these
models, and an import back would be circular.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from dialerd.core.models import LeadStatus, LeadUpdate, Outcome
from dialerd.rules.durations import DelayList, DelaySeconds, RetryStep

_CODE_RE = re.compile(r"^[a-z0-9][a-z0-9_]{0,31}$")
#: the agent presses "*" then this digit (confbridge.conf dialer_agent_menu *0-*9)
_DTMF_RE = re.compile(r"^[0-9]$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DispositionRetry(RetryStep):
    """A disposition's own retry (see ``RetryStep``): a day by default."""

    delay_s: DelaySeconds | DelayList = 86400


class DncScope(StrEnum):
    CAMPAIGN = "campaign"
    GLOBAL = "global"


class Disposition(_Strict):
    """One code an agent can give a call, e.g.::

    - {code: sale, label: Sale, dtmf: "1", final: true, sale: true}
    - {code: callback, label: Call back, dtmf: "3", callback: true}
    - {code: dnc, label: Do not call, dtmf: "5", final: true, dnc: campaign}
    """

    code: str
    label: str = Field(min_length=1, max_length=64)
    dtmf: str | None = None
    #: no more attempts
    final: bool = False
    #: try again by this rule (not final, not a callback)
    retry: DispositionRetry | None = None
    #: try again at a time the agent gives (else after ``callback_delay_s``)
    callback: bool = False
    callback_delay_s: Annotated[int, Field(ge=60, le=90 * 86400)] = 86400
    #: put the number on a do-not-call list (must be final)
    dnc: DncScope | None = None
    #: a person was reached (reports; ``wrong_number`` is not a contact)
    contact: bool = True
    sale: bool = False

    @field_validator("code")
    @classmethod
    def _code(cls, v: str) -> str:
        if not _CODE_RE.fullmatch(v):
            raise ValueError("use 1-32 of a-z 0-9 _, starting with a letter or digit")
        return v

    @field_validator("dtmf")
    @classmethod
    def _dtmf(cls, v: str | None) -> str | None:
        if v is not None and not _DTMF_RE.fullmatch(v):
            raise ValueError("one digit 0-9: the agent presses * then this digit")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Disposition:
        ways = sum((self.final, self.retry is not None, self.callback))
        if ways != 1:
            raise ValueError(
                f"disposition {self.code!r}: give exactly one of final: true, retry, callback: true"
            )
        if self.dnc is not None and not self.final:
            raise ValueError(f"disposition {self.code!r}: a do-not-call disposition must be final")
        return self


def default_dispositions() -> list[Disposition]:
    return [
        Disposition(code="sale", label="Sale", dtmf="1", final=True, sale=True),
        Disposition(code="not_interested", label="Not interested", dtmf="2", final=True),
        Disposition(code="callback", label="Call back", dtmf="3", callback=True),
        Disposition(code="wrong_number", label="Wrong number", dtmf="4", final=True, contact=False),
        Disposition(
            code="do_not_call", label="Do not call", dtmf="5", final=True, dnc=DncScope.CAMPAIGN
        ),
        Disposition(
            code="no_decision",
            label="Try again later",
            dtmf="6",
            retry=DispositionRetry(delay_s=86400, max_attempts=5),
        ),
    ]


def check_codes(dispositions: list[Disposition]) -> list[Disposition]:
    """Codes and keys must be unique (used as a pydantic validator)."""
    codes = [d.code for d in dispositions]
    if len(set(codes)) != len(codes):
        raise ValueError("disposition codes repeat")
    keys = [d.dtmf for d in dispositions if d.dtmf is not None]
    if len(set(keys)) != len(keys):
        raise ValueError("disposition dtmf keys repeat")
    return dispositions


def find(
    dispositions: list[Disposition], *, code: str | None = None, dtmf: str | None = None
) -> Disposition | None:
    for d in dispositions:
        if (code is not None and d.code == code) or (dtmf is not None and d.dtmf == dtmf):
            return d
    return None


@dataclass(frozen=True, slots=True)
class DispositionDecision:
    lead: LeadUpdate
    code: str
    #: add the number to this DNC list (None: no)
    dnc: DncScope | None
    contact: bool
    sale: bool


def decide_disposition(
    dispo: Disposition,
    lead_id: int,
    attempts: int,
    now: float,
    *,
    callback_at: float | None = None,
    outcome: Outcome = Outcome.ANSWERED,
) -> DispositionDecision:
    """The lead's update for an agent's disposition.

    ``attempts`` is the lead's attempt count *including* the call being
    disposed (the retry rules already counted it): nothing is added here.
    A callback time in the past is due at ``now``; the calling windows still
    apply when the hopper returns the lead.
    """
    if dispo.final:
        lead = LeadUpdate(
            lead_id=lead_id,
            status=LeadStatus.DONE,
            attempts=attempts,
            last_outcome=outcome,
            final_reason=f"dispo_{dispo.code}",
        )
    elif dispo.callback:
        due = now + dispo.callback_delay_s if callback_at is None else max(now, callback_at)
        lead = LeadUpdate(
            lead_id=lead_id,
            status=LeadStatus.RETRY,
            attempts=attempts,
            last_outcome=outcome,
            next_due_at=due,
        )
    else:
        rule = dispo.retry
        assert rule is not None  # the model validator guarantees it
        if attempts >= rule.max_attempts:
            lead = LeadUpdate(
                lead_id=lead_id,
                status=LeadStatus.DONE,
                attempts=attempts,
                last_outcome=outcome,
                final_reason=f"max_attempts_dispo_{dispo.code}",
            )
        else:
            lead = LeadUpdate(
                lead_id=lead_id,
                status=LeadStatus.RETRY,
                attempts=attempts,
                last_outcome=outcome,
                next_due_at=now + rule.delay_for(attempts),
            )
    return DispositionDecision(lead, dispo.code, dispo.dnc, dispo.contact, dispo.sale)


@dataclass(frozen=True, slots=True)
class AttemptCheck:
    ok: bool
    reason: str


def check_attempt(
    attempts: int, attempts_today: int, max_total: int, max_per_day: int | None
) -> AttemptCheck:
    """Whether one more attempt may be placed (the hopper and the core's last
    check before the Originate). ``max_total``: the largest maximum any rule
    allows (:func:`max_attempts_cap`); ``attempts_today``: the lead's
    attempts since :func:`dialerd.rules.windows.local_day_start`."""
    if attempts >= max_total:
        return AttemptCheck(False, "max_attempts")
    if max_per_day is not None and attempts_today >= max_per_day:
        return AttemptCheck(False, "max_attempts_per_day")
    return AttemptCheck(True, "ok")


def max_attempts_cap(rule_maxima: list[int], dispositions: list[Disposition]) -> int:
    """The largest ``max_attempts`` of the retry rules (pass
    ``[r.max_attempts for r in campaign.retry ...]``) and the dispositions'
    retry rules, the most attempts a lead can ever get in one cycle."""
    dmax = [d.retry.max_attempts for d in dispositions if d.retry is not None]
    return max([*rule_maxima, *dmax, 1])


def apply_daily_cap(
    update: LeadUpdate, attempts_today: int, max_per_day: int | None, next_day_start: float
) -> LeadUpdate:
    """Push a retry to the next local day once the day's attempts are used.

    ``attempts_today`` includes the attempt just made; ``next_day_start``
    from :func:`dialerd.rules.windows.next_local_day_start`.
    """
    if (
        max_per_day is None
        or update.status is not LeadStatus.RETRY
        or attempts_today < max_per_day
        or (update.next_due_at is not None and update.next_due_at >= next_day_start)
    ):
        return update
    return LeadUpdate(
        lead_id=update.lead_id,
        status=update.status,
        attempts=update.attempts,
        last_outcome=update.last_outcome,
        next_due_at=next_day_start,
        final_reason=update.final_reason,
    )


#: final reasons a list recycle brings back by default: the number was never
#: reached, as opposed to a disposition or a DNC
DEFAULT_RECYCLE_REASONS: tuple[str, ...] = (
    "max_attempts_busy",
    "max_attempts_no_answer",
    "max_attempts_congestion",
    "max_attempts_machine",
)


def recycle_due(
    final_reason: str | None,
    finished_at: float,
    now: float,
    after_days: int | None,
    reasons: tuple[str, ...] | list[str] = DEFAULT_RECYCLE_REASONS,
) -> bool:
    """Whether a finished lead comes back (as new, attempts reset) now: only
    the listed ``final_reason`` values (the hopper's DNC check still stops a
    number put on a list since)."""
    if after_days is None or final_reason is None:
        return False
    return final_reason in reasons and now - finished_at >= after_days * 86400
