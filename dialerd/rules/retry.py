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


#: Q.850 hangup causes that refine a Reason 0 ("failure"): Asterisk reports
#: Reason 0 when the far end clears the call itself, e.g. cause 19 (no answer)
#: from a carrier, so the cause is what tells no-answer from a real failure.
#: Through a PJSIP trunk EVERY final SIP error gives Reason 0 (measured with
#: the sandbox's sipp carrier, 486 included), so this table is the whole
#: classification of a carrier's answers: 486 -> 17, 480 -> 19, 408 -> 18,
#: 503 -> 34, 502 -> 27; 404 -> 1 and 603 -> 21 stay failures.
_CAUSES: dict[int, Outcome] = {
    17: Outcome.BUSY,
    18: Outcome.NO_ANSWER,  # no user responding
    19: Outcome.NO_ANSWER,  # no answer from user (user alerted)
    26: Outcome.NO_ANSWER,  # non-selected user clearing
    27: Outcome.CONGESTION,  # destination out of order (SIP 502 Bad Gateway)
    34: Outcome.CONGESTION,  # no circuit available
    38: Outcome.CONGESTION,  # network out of order
    41: Outcome.CONGESTION,  # temporary failure
    42: Outcome.CONGESTION,  # switching equipment congestion
}


def outcome_for_reason(reason: int | None, cause: int | None = None) -> Outcome:
    """Outcome of an Originate that did not answer; None = no verdict came.

    ``cause`` is the hangup cause seen for the call, which refines Reason 0.
    """
    if reason is None:
        return Outcome.INTERRUPTED
    if reason == 0 and cause is not None and cause in _CAUSES:
        return _CAUSES[cause]
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
