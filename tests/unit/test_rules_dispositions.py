"""Dispositions, attempt limits and recycling; attempts never exceed the maxima."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from dialerd.campaign.model import RetryRules
from dialerd.core.models import LeadStatus, LeadUpdate, Outcome
from dialerd.rules.dispositions import (
    Disposition,
    DispositionRetry,
    DncScope,
    apply_daily_cap,
    check_attempt,
    check_codes,
    decide_disposition,
    default_dispositions,
    find,
    max_attempts_cap,
    recycle_due,
)
from dialerd.rules.retry import decide
from dialerd.rules.windows import local_day_start, next_local_day_start

NOW = 1_781_100_000.0


def test_model_validation() -> None:
    with pytest.raises(ValidationError, match="exactly one"):
        Disposition(code="x", label="X")
    with pytest.raises(ValidationError, match="exactly one"):
        Disposition(code="x", label="X", final=True, callback=True)
    with pytest.raises(ValidationError, match="must be final"):
        Disposition(code="x", label="X", callback=True, dnc=DncScope.GLOBAL)
    with pytest.raises(ValidationError):
        Disposition(code="Bad Code", label="X", final=True)
    with pytest.raises(ValidationError):
        Disposition(code="x", label="X", final=True, dtmf="12a")
    with pytest.raises(ValidationError):
        Disposition.model_validate({"code": "x", "label": "X", "final": True, "typo": 1})
    d = default_dispositions()
    assert check_codes(d) == d
    with pytest.raises(ValueError, match="codes repeat"):
        check_codes([*d, d[0]])
    with pytest.raises(ValueError, match="keys repeat"):
        check_codes([*d, Disposition(code="other", label="O", final=True, dtmf="1")])
    with pytest.raises(ValueError, match="one digit"):  # '*' + one digit is all the menu has
        Disposition(code="other", label="O", final=True, dtmf="12")
    with pytest.raises(ValueError, match="one digit"):
        Disposition(code="other", label="O", final=True, dtmf="#")
    assert find(d, dtmf="5") is not None and find(d, dtmf="5").dnc is DncScope.CAMPAIGN  # type: ignore[union-attr]
    assert find(d, code="sale") is d[0] and find(d, code="nope") is None


def test_decide_final_callback_retry() -> None:
    d = {x.code: x for x in default_dispositions()}
    r = decide_disposition(d["sale"], 7, 2, NOW)
    assert r.lead == LeadUpdate(7, LeadStatus.DONE, 2, Outcome.ANSWERED, None, "dispo_sale")
    assert r.sale and r.contact and r.dnc is None
    r = decide_disposition(d["do_not_call"], 7, 2, NOW)
    assert r.lead.status is LeadStatus.DONE and r.dnc is DncScope.CAMPAIGN
    r = decide_disposition(d["wrong_number"], 7, 1, NOW)
    assert not r.contact
    r = decide_disposition(d["callback"], 7, 1, NOW, callback_at=NOW + 7200)
    assert r.lead.status is LeadStatus.RETRY and r.lead.next_due_at == NOW + 7200
    r = decide_disposition(d["callback"], 7, 1, NOW, callback_at=NOW - 10)
    assert r.lead.next_due_at == NOW
    r = decide_disposition(d["callback"], 7, 1, NOW)
    assert r.lead.next_due_at == NOW + 86400
    nd = Disposition(
        code="nd", label="ND", retry=DispositionRetry(delay_s=[60, 600], max_attempts=3)
    )
    assert decide_disposition(nd, 1, 1, NOW).lead.next_due_at == NOW + 60
    assert decide_disposition(nd, 1, 2, NOW).lead.next_due_at == NOW + 600
    done = decide_disposition(nd, 1, 3, NOW).lead
    assert done.status is LeadStatus.DONE and done.final_reason == "max_attempts_dispo_nd"


def test_daily_cap_and_checks() -> None:
    up = LeadUpdate(1, LeadStatus.RETRY, 3, Outcome.BUSY, NOW + 600)
    assert apply_daily_cap(up, 2, 3, NOW + 5000) == up
    assert apply_daily_cap(up, 3, None, NOW + 5000) == up
    assert apply_daily_cap(up, 3, 3, NOW + 5000).next_due_at == NOW + 5000
    done = LeadUpdate(1, LeadStatus.DONE, 3, Outcome.BUSY, None, "x")
    assert apply_daily_cap(done, 9, 3, NOW + 5000) == done
    assert check_attempt(2, 0, 3, None).ok
    assert check_attempt(3, 0, 3, None).reason == "max_attempts"
    assert check_attempt(1, 2, 3, 2).reason == "max_attempts_per_day"
    assert max_attempts_cap([5, 3], default_dispositions()) == 5
    assert (
        max_attempts_cap(
            [2], [Disposition(code="r", label="R", retry=DispositionRetry(max_attempts=9))]
        )
        == 9
    )


def test_recycle() -> None:
    assert recycle_due("max_attempts_no_answer", NOW, NOW + 30 * 86400, 30)
    assert not recycle_due("max_attempts_no_answer", NOW, NOW + 29 * 86400, 30)
    assert not recycle_due("dispo_sale", NOW, NOW + 99 * 86400, 30)
    assert not recycle_due("max_attempts_no_answer", NOW, NOW + 99 * 86400, None)
    assert recycle_due("dispo_not_interested", NOW, NOW + 99 * 86400, 30, ["dispo_not_interested"])


RULES = RetryRules()
RETRYABLE = [o for o in Outcome if o is not Outcome.ANSWERED]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(list(Outcome)),
            st.sampled_from([x.code for x in default_dispositions()]),
            st.floats(min_value=0, max_value=6 * 3600),
        ),
        max_size=40,
    ),
    st.sampled_from([None, 1, 2, 3]),
    st.sampled_from(
        [
            ("America/New_York",),
            ("Europe/London",),
            ("America/Denver", "America/North_Dakota/Center"),
        ]
    ),
)
def test_attempts_never_exceed_the_maxima(
    seq: list[tuple[Outcome, str, float]], per_day: int | None, zones: tuple[str, ...]
) -> None:
    """A lead driven by random outcomes and dispositions, dialed whenever
    the checks allow: never more attempts than the largest rule maximum, and
    never more in one local day than ``per_day``."""
    dispos = {d.code: d for d in default_dispositions()}
    rule_max = [getattr(RULES, o.value).max_attempts for o in RETRYABLE]
    cap = max_attempts_cap(rule_max, list(dispos.values()))
    attempts = 0
    starts: list[float] = []
    now = NOW
    due = now
    status = LeadStatus.NEW
    for outcome, code, gap in seq:
        now = max(now + gap, due)
        if status is LeadStatus.DONE:
            break
        day0 = local_day_start(zones, now)
        today = sum(1 for t in starts if t >= day0)
        if not check_attempt(attempts, today, cap, per_day).ok:
            assert attempts >= cap or (per_day is not None and today >= per_day)
            due = next_local_day_start(zones, now) if attempts < cap else float("inf")
            if attempts >= cap:
                break
            continue
        starts.append(now)
        up = decide(RULES, 1, attempts, outcome, now)
        if outcome is Outcome.ANSWERED:
            up = decide_disposition(dispos[code], 1, up.attempts, now).lead
        up = apply_daily_cap(up, today + 1, per_day, next_local_day_start(zones, now))
        attempts, status = up.attempts, up.status
        due = up.next_due_at if up.next_due_at is not None else now
        assert attempts <= cap
    assert attempts <= cap
    if per_day is not None:
        for t in starts:
            d0 = local_day_start(zones, t)
            d1 = next_local_day_start(zones, t)
            assert sum(1 for u in starts if d0 <= u < d1) <= per_day or len(zones) > 1
