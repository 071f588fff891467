"""Retry rules: what happens to a lead after an attempt. Pure, no I/O."""

from __future__ import annotations

from dialerd.campaign.model import RetryRules
from dialerd.core.models import LeadStatus, LeadUpdate, Outcome

#: how AMI's OriginateResponse ``Reason`` maps to an outcome (Asterisk's
#: ``enum ast_control_frame_type`` values the originate code reports)
_REASONS: dict[int, Outcome] = {
    0: Outcome.FAILED,  # failure: rejected, unallocated, channel unavailable
    1: Outcome.NO_ANSWER,  # remote hung up while ringing
    3: Outcome.NO_ANSWER,  # rang until the Originate Timeout (or cause 19/26)
    5: Outcome.BUSY,  # cause 17
    8: Outcome.CONGESTION,  # causes 21, 27, 34, 38, 41, 42
}


def outcome_for_reason(reason: int | None) -> Outcome:
    """Outcome of an Originate that did not answer; None = no verdict came."""
    if reason is None:
        return Outcome.INTERRUPTED
    return _REASONS.get(reason, Outcome.FAILED)


def decide(
    rules: RetryRules, lead_id: int, attempts_before: int, outcome: Outcome, now: float
) -> LeadUpdate:
    """The lead's next state after one more attempt ended with ``outcome``.

    ``max_attempts`` of the outcome's rule caps the lead's total attempts: a
    lead that was busy twice and then had no answer is at attempt 3 for the
    no-answer rule too, so no mix of outcomes can exceed the largest maximum.
    """
    attempts = attempts_before + 1
    rule = rules.for_outcome(outcome)
    if rule is None:
        return LeadUpdate(
            lead_id=lead_id,
            status=LeadStatus.DONE,
            attempts=attempts,
            last_outcome=outcome,
            final_reason=outcome.value,
        )
    if attempts >= rule.max_attempts:
        return LeadUpdate(
            lead_id=lead_id,
            status=LeadStatus.DONE,
            attempts=attempts,
            last_outcome=outcome,
            final_reason=f"max_attempts_{outcome.value}",
        )
    return LeadUpdate(
        lead_id=lead_id,
        status=LeadStatus.RETRY,
        attempts=attempts,
        last_outcome=outcome,
        next_due_at=now + rule.delay_for(attempts),
    )
