"""check-config findings, the Compliance YAML block, and screen_lead."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from dialerd.campaign.lint import Finding, check_campaign
from dialerd.campaign.model import Campaign, Compliance, DialMode
from dialerd.rules.abandon import LOCK_S, AbandonLock
from dialerd.rules.dnc import DncList
from dialerd.rules.screening import screen_lead
from dialerd.rules.windows import may_call, zones_for_lead

BASE = {
    "name": "c1",
    "trunk": "PJSIP/{number}@trunk-out",
    "caller_id": {"name": "Acme", "number": "+12025550143"},
    "agents": ["1001"],
    "safe_harbor_sound": "custom/safe-harbor",
}
SAFE = {"seller": "Acme", "callback_number": "+1 202 555 0143"}


def camp(**kw: object) -> Campaign:
    return Campaign.model_validate({**BASE, **kw})


def levels(fs: list[Finding]) -> dict[str, str]:
    return {f.field: f.level for f in fs}


def test_example_block_in_the_docstring_is_valid() -> None:
    doc = Compliance.__doc__ or ""
    block = textwrap.dedent(doc.split("::", 1)[1])
    data = yaml.safe_load(block)
    c = Compliance.model_validate(data["compliance"])
    assert c.safe_harbor is not None and c.safe_harbor.callback_number == "+12025550143"
    assert c.max_attempts_per_day == 3 and len(c.dispositions) == 3
    with pytest.raises(ValidationError):
        Compliance.model_validate({"schedul": {}})
    with pytest.raises(ValidationError):
        Compliance.model_validate({"safe_harbor": {"seller": "A", "callback_number": "12"}})


def test_clean_campaign_has_no_findings() -> None:
    assert check_campaign(camp(), Compliance(safe_harbor=SAFE)) == []  # type: ignore[arg-type]


def test_ring_timeout() -> None:
    c = camp(ring_timeout_s=10)
    assert levels(check_campaign(c, Compliance(safe_harbor=SAFE)))["ring_timeout_s"] == "error"  # type: ignore[arg-type]
    comp = Compliance(safe_harbor=SAFE, ring_timeout_override=True)  # type: ignore[arg-type]
    assert levels(check_campaign(c, comp))["ring_timeout_s"] == "warning"


def test_safe_harbor_needed_when_abandons_are_possible() -> None:
    assert levels(check_campaign(camp()))["compliance.safe_harbor"] == "error"
    assert "compliance.safe_harbor" not in levels(check_campaign(camp(dial_mode="preview")))
    comp = Compliance(safe_harbor=SAFE, agent_guaranteed=True)  # type: ignore[arg-type]
    assert levels(check_campaign(camp(dial_mode="predictive"), comp)) == {
        "compliance.agent_guaranteed": "warning"
    }


def test_abandon_target_above_3_percent() -> None:
    c = camp().model_copy(update={"abandon_target": 0.05})  # the model caps it today
    assert levels(check_campaign(c, Compliance(safe_harbor=SAFE)))["abandon_target"] == "error"  # type: ignore[arg-type]
    comp = Compliance(safe_harbor=SAFE, abandon_target_override=True)  # type: ignore[arg-type]
    assert levels(check_campaign(c, comp))["abandon_target"] == "warning"


def test_schedule_findings() -> None:
    loose = Compliance(safe_harbor=SAFE, schedule={"hours": {"mon-fri": ["07:00-22:00"]}})  # type: ignore[arg-type]
    fs = check_campaign(camp(), loose)
    assert [f.level for f in fs] == ["warning"] and "07:00-22:00" in fs[0].message
    closed = Compliance(safe_harbor=SAFE, schedule={"hours": {"sun": ["21:00-23:00"]}})  # type: ignore[arg-type]
    assert "error" in [f.level for f in check_campaign(camp(), closed)]
    nodnc = Compliance(
        safe_harbor=SAFE,  # type: ignore[arg-type]
        dispositions=[{"code": "sale", "label": "Sale", "final": True}],  # type: ignore[list-item]
    )
    assert levels(check_campaign(camp(), nodnc)) == {"compliance.dispositions": "warning"}


def test_compliance_read_from_the_campaign_when_it_has_it() -> None:
    class WithCompliance:
        dial_mode = DialMode.PREVIEW
        ring_timeout_s = 12
        abandon_target = 0.03
        compliance = Compliance(ring_timeout_override=True)

    fs = check_campaign(WithCompliance())  # type: ignore[arg-type]
    assert levels(fs) == {"ring_timeout_s": "warning"}


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> float:
    return datetime(y, mo, d, h, mi, tzinfo=UTC).timestamp()


def test_screen_lead_reasons_and_retry_at() -> None:
    comp = Compliance(max_attempts_per_day=2)
    dnc, lock = DncList(), AbandonLock()
    now = utc(2026, 6, 10, 16)  # 12:00 New York
    kw = dict(
        campaign="c1",
        timezone=None,
        attempts=0,
        attempts_today=0,
        now=now,
        compliance=comp,
        dnc=dnc,
        lock=lock,
        max_total=3,
    )
    assert screen_lead(phone="+12125550100", **kw).ok  # type: ignore[arg-type]
    dnc.add("+12125550101", "c1", "optout")
    s = screen_lead(phone="+12125550101", **kw)  # type: ignore[arg-type]
    assert (s.ok, s.reason, s.retry_at) == (False, "dnc_campaign", None)
    s = screen_lead(phone="+12125550100", **{**kw, "attempts": 3})  # type: ignore[arg-type]
    assert (s.reason, s.retry_at) == ("max_attempts", None)
    s = screen_lead(phone="+12125550100", **{**kw, "attempts_today": 2})  # type: ignore[arg-type]
    assert s.reason == "max_attempts_per_day" and s.retry_at == utc(2026, 6, 11, 12)
    lock.abandoned("+12125550100", now - 3600)
    s = screen_lead(phone="+12125550100", **kw)  # type: ignore[arg-type]
    # the lock ends at 11:00 New York three days on, inside the window
    assert s.reason == "abandon_lock" and s.retry_at == now - 3600 + LOCK_S
    s = screen_lead(phone="+12125550100", **{**kw, "compliance": Compliance(agent_guaranteed=True)})  # type: ignore[arg-type]
    assert s.ok
    s = screen_lead(phone="+12125550102", **{**kw, "now": utc(2026, 6, 11, 3)})  # type: ignore[arg-type]
    assert s.reason == "outside_legal_window" and s.retry_at == utc(2026, 6, 11, 12)
    s = screen_lead(phone="+12125550102", **{**kw, "timezone": "Nowhere/X"})  # type: ignore[arg-type]
    assert (s.reason, s.retry_at) == ("no_timezone", None)


PHONES = ["+12125550100", "+13125550100", "+17015550100", "+442079460000", "+61212345678"]


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(min_value=0, max_value=30 * 3600),
            st.sampled_from(PHONES),
            st.booleans(),
            st.booleans(),
        ),
        max_size=40,
    ),
    st.booleans(),
)
def test_screened_leads_are_never_locked_dnc_or_out_of_window(
    seq: list[tuple[float, str, bool, bool]], guaranteed: bool
) -> None:
    comp = Compliance(agent_guaranteed=guaranteed)
    dnc, lock = DncList(), AbandonLock()
    abandons: dict[str, float] = {}
    now = utc(2026, 10, 30)
    for dt, phone, abandon, to_dnc in seq:
        now += dt
        s = screen_lead(
            campaign="c",
            phone=phone,
            timezone=None,
            attempts=0,
            attempts_today=0,
            now=now,
            compliance=comp,
            dnc=dnc,
            lock=lock,
            max_total=3,
        )
        if s.ok:
            assert dnc.is_blocked("c", phone) is None
            assert may_call(comp.schedule, zones_for_lead(phone), now).ok
            if not guaranteed:
                assert now - abandons.get(phone, -1e18) >= LOCK_S
        elif s.retry_at is not None:
            assert s.retry_at > now
            assert may_call(comp.schedule, zones_for_lead(phone), s.retry_at).ok
            if not guaranteed:
                assert s.retry_at - abandons.get(phone, -1e18) >= LOCK_S
        if abandon:
            lock.abandoned(phone, now)
            abandons[phone] = now
        if to_dnc:
            dnc.add(phone, "c")
