"""``outcome_for_reason``: what an unanswered Originate's Reason and hangup
cause mean, for the answers a real carrier gives through the PJSIP trunk.

The (Reason, cause) pairs below are what Asterisk 22 reported in the sandbox
for each SIP answer of the sipp carrier (tests/integration/
test_carrier_trunk.py measures them again on every run): through a PJSIP
trunk every final error is Reason 0, so the cause alone classifies it.
"""

from __future__ import annotations

import pytest

from dialerd.core.models import Outcome
from dialerd.rules.retry import outcome_for_reason

CARRIER = [
    # SIP answer, OriginateResponse Reason, Hangup cause, outcome
    pytest.param(0, 17, Outcome.BUSY, id="486 Busy Here"),
    pytest.param(0, 19, Outcome.NO_ANSWER, id="180 then 480 Temporarily Unavailable"),
    pytest.param(0, 18, Outcome.NO_ANSWER, id="180 then 408 Request Timeout"),
    pytest.param(0, 34, Outcome.CONGESTION, id="503 Service Unavailable"),
    # a carrier's gateway fault is temporary: retried as congestion, never a
    # final failure that would burn the lead (it was "failed" before)
    pytest.param(0, 27, Outcome.CONGESTION, id="502 Bad Gateway"),
    pytest.param(0, 1, Outcome.FAILED, id="404 Not Found"),
    # the callee declined: a failure, never a quick
    # congestion retry of someone who declined the call
    pytest.param(0, 21, Outcome.FAILED, id="603 Decline"),
    pytest.param(3, 19, Outcome.NO_ANSWER, id="ringing until the Originate Timeout"),
]


@pytest.mark.parametrize(("reason", "cause", "outcome"), CARRIER)
def test_carrier_answers(reason: int, cause: int, outcome: Outcome) -> None:
    assert outcome_for_reason(reason, cause) is outcome


@pytest.mark.parametrize(
    ("reason", "outcome"),
    [
        (5, Outcome.BUSY),  # Local channels: Busy() is Reason 5
        (8, Outcome.CONGESTION),  # Local channels: Congestion() is Reason 8
        (3, Outcome.NO_ANSWER),
        (1, Outcome.NO_ANSWER),
        (0, Outcome.FAILED),  # no cause (yet): a failure
        (42, Outcome.FAILED),  # a Reason Asterisk never sends
    ],
)
def test_reasons_without_cause(reason: int, outcome: Outcome) -> None:
    assert outcome_for_reason(reason) is outcome


def test_no_verdict_is_interrupted() -> None:
    assert outcome_for_reason(None, 17) is Outcome.INTERRUPTED


def test_cause_refines_only_reason_zero() -> None:
    # Reason 5 is busy whatever the cause says; Reason 0 with cause 17 too
    assert outcome_for_reason(5, 1) is Outcome.BUSY
    assert outcome_for_reason(0, 17) is Outcome.BUSY
    assert outcome_for_reason(0, 999) is Outcome.FAILED
