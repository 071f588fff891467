"""A call adopted by a Resync that hung up while the snapshot was on its way:
its Hangup reached the core first (and was dropped), so the shell replays it
after the Resync. Seen in test_recovery as a lead stuck in "dialing"."""

from __future__ import annotations

from dialerd.asterisk.mapping import UnclaimedHangups, to_event
from dialerd.campaign.model import Campaign
from dialerd.core import commands as cmd
from dialerd.core import events as ev
from dialerd.core.models import Lead, Outcome
from dialerd.core.testing import CoreHarness
from dialerd.sandbox.scenario import sim_campaign


def test_a_hangup_before_the_resync_ends_the_adopted_call() -> None:
    w = CoreHarness(Campaign.model_validate({"name": "c1", **sim_campaign([])}))
    core, now = w.core, w.now
    snapshot_at = now + 0.1
    unclaimed = UnclaimedHangups()
    # the far end of old-1 hangs up after the snapshot, before the Resync
    for half, cause in (("old-1;2", "17"), ("old-1", "0")):
        msg = {"Event": "Hangup", "Uniqueid": half, "Cause": cause}
        assert to_event(msg, now + 0.2, core.calls, core.agent_by_uniqueid) is None
        unclaimed.seen(msg, now + 0.2)
    unclaimed.seen({"Event": "Hangup", "Uniqueid": "older", "Cause": "16"}, now - 5)
    oa = ev.OpenAttempt("old-1", "c1", Lead(1, "c1", "+442071200001"), now - 5)
    w.do(ev.Resync(snapshot_at, (ev.LiveCall("old-1", "L/1;1", "ringing"),), (), (oa,)))
    assert "old-1" in core.calls and 1 in core.live_leads
    hups = unclaimed.claim(snapshot_at, core.calls, now + 0.3)
    assert [(h.attempt_id, h.cause) for h in hups] == [("old-1", 17)]
    out: list[cmd.Command] = []
    for h in hups:
        out += w.do(h)
    w.do(ev.Tick(now + 5))
    assert "old-1" not in core.calls and 1 not in core.live_leads
    rec = [c for c in out if isinstance(c, cmd.RecordOutcome)]
    assert rec and rec[0].outcome is Outcome.BUSY
    # claimed once; hangups from before the snapshot are never replayed
    assert unclaimed.claim(snapshot_at, {"old-1", "older"}, now + 1) == []


def test_unclaimed_hangups_stay_bounded() -> None:
    u = UnclaimedHangups()
    for i in range(UnclaimedHangups.MAX + 10):
        u.seen({"Event": "Hangup", "Uniqueid": f"x{i}", "Cause": "16"}, float(i))
    assert len(u) <= UnclaimedHangups.MAX
    u.seen({"Event": "Newchannel", "Uniqueid": "y"}, 0.0)
    assert "y" not in {e.attempt_id for e in u.claim(0.0, {"y"}, 1.0)}
