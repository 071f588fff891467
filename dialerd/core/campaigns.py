"""Campaign lifecycle, supervisor controls, and the pacing step.

Why the pacing step lives here: it is the one place where a campaign's
settings, its supervisor state (paused, dial level cap), the daemon's state
(AMI up, the store able to record, draining) and the policy meet, and it is run once per campaign
touched by an event, after the event's own work (see ``DialerCore.handle``).
The policies themselves are pure functions of a snapshot (``dialerd.pacing``).
"""

from __future__ import annotations

from dialerd.campaign.model import Campaign, DialMode
from dialerd.core import agents, calls, hopper, inbound, preview, state
from dialerd.core.context import CoreContext
from dialerd.core.state import CampaignRun
from dialerd.pacing.policies import InboundDemand, PacingSnapshot
from dialerd.pacing.registry import make_policy


def loaded(cx: CoreContext, c: Campaign, now: float) -> None:
    run = cx.campaigns.get(c.name)
    if run is None or run.removed:
        run = CampaignRun(cfg=c, policy=make_policy(c.dial_mode.value, c))
        old = cx.campaigns.get(c.name)
        if old is not None:  # re-added after removal: keep counters of live calls
            state.carry_calls(old, run)
            run.stats = old.stats
            run.tracker = old.tracker
        cx.campaigns[c.name] = run
    else:
        if c.dial_mode != run.cfg.dial_mode or c.pacing != run.cfg.pacing:
            run.policy = make_policy(c.dial_mode.value, c)
        run.cfg = c
        trk = run.trk
        trk.wrap_cfg_s, trk.connect_deadline_s = c.wrap_up_s, c.connect_deadline_s
    run.abandons.ofcom_fp_rate = c.compliance.ofcom_amd_fp_rate
    if not c.enabled:
        hopper.release(cx, run)
    _reassign_agents(cx, now)
    inbound.refresh(cx, now)
    cx.dirty.add(c.name)


def removed(cx: CoreContext, name: str, now: float) -> None:
    """Stop dialing it; its agents are free, its live calls finish normally."""
    run = cx.campaigns.get(name)
    if run is None:
        return
    run.removed = True
    hopper.release(cx, run)
    for aid in list(run.agents):
        agents.detach(cx, cx.agents[aid])
    cx.agent_campaign = {a: c for a, c in cx.agent_campaign.items() if c != name}
    inbound.refresh(cx, now)


def _reassign_agents(cx: CoreContext, now: float) -> None:
    """Each agent works for the first campaign that lists them."""
    mapping: dict[str, str] = {}
    for name, run in cx.campaigns.items():
        if run.removed:
            continue
        for aid in run.cfg.agents:
            mapping.setdefault(aid, name)
    cx.agent_campaign = mapping
    for agent in cx.agents.values():
        want = mapping.get(agent.id)
        if want != agent.campaign:
            agents.detach(cx, agent)
            if want is not None:
                agents.attach(cx, agent, want, now)


# ------------------------------------------------------- supervisor, daemon
def pause(cx: CoreContext, name: str, paused: bool) -> None:
    if name in cx.campaigns:
        cx.campaigns[name].paused = paused
        cx.dirty.add(name)


def set_dial_level(cx: CoreContext, name: str, level: float | None) -> None:
    if name in cx.campaigns:
        cx.campaigns[name].max_level = level
        cx.dirty.add(name)


def ami(cx: CoreContext, up: bool) -> None:
    """AMI logged in (every campaign may dial again) or lost (no new dials)."""
    cx.ami_up = up
    if up:
        cx.dirty.update(cx.campaigns)


def store(cx: CoreContext, down: str | None) -> None:
    """The store cannot record (``down`` says why): fail closed, no new
    dial anywhere; live calls go on and their outcomes are kept by the
    shell. Back up (None): every campaign may dial again."""
    cx.store_down = down
    if down is None:
        cx.dirty.update(cx.campaigns)


def drain(cx: CoreContext, now: float) -> None:
    """Shutdown: place no new calls, give every hopper back; callers still
    waiting get their queue's no-agents fallback (nobody will answer them)."""
    cx.draining = True
    for run in cx.campaigns.values():
        hopper.release(cx, run)
    inbound.drain(cx, now)


# ------------------------------------------------------------------ pacing
_NO_INBOUND = InboundDemand()


def snapshot(cx: CoreContext, name: str, now: float) -> PacingSnapshot:
    r = cx.campaigns[name]
    r.trk.advance(now)
    d = inbound.demand(cx, r, now) if cx.queues else _NO_INBOUND
    return PacingSnapshot(
        now=now,
        agents_logged_in=len(r.agents),
        agents_ready=len(r.ready),
        agents_talking=r.talking,
        agents_wrap=r.wrap,
        agents_paused=r.paused_agents,
        calls_dialing=r.dialing,
        calls_waiting=len(r.waiting),
        lines_in_use=r.live,
        max_lines=r.cfg.max_lines,
        dial_ratio=r.cfg.dial_ratio,
        tracker=r.tracker,
        abandon_target=r.cfg.abandon_target,
        inbound_waiting=d.waiting,
        inbound_rate=d.rate,
        inbound_busy=d.busy,
        inbound_oldest_wait_s=d.oldest_wait_s,
        inbound_sl_met=d.sl_met,
        inbound_sl_counted=d.sl_counted,
        inbound_sl_target=d.sl_target,
        inbound_within_s=d.within_s,
    )


def pace(cx: CoreContext, name: str, now: float) -> None:
    """Place the calls the policy asks for (or offer previews), then top
    the hopper up."""
    run = cx.campaigns.get(name)
    if run is None or not run.active or cx.draining or run.paused or cx.store_down:
        return
    if cx.ami_up and run.cfg.dial_mode is DialMode.PREVIEW:
        preview.offer(cx, run, now)
    elif cx.ami_up:
        n = run.policy.calls_to_place(snapshot(cx, name, now))
        if run.max_level is not None:
            n = min(n, int(run.max_level * len(run.agents) + 1e-9) - run.live)
        if n > 0 and cx.screen and _budget_spent(run, now):
            # no abandon left in the 30-day or 24-hour window: dial only
            # for agents free now (no over-dial can abandon a call). The
            # predictive policy holds the target itself; this is the
            # daemon's backstop (off in the simulator, whose benchmarks
            # measure the policy alone)
            n = min(n, len(run.ready) - run.dialing - len(run.waiting))
        while n > 0:
            lead = hopper.next_lead(cx, run, now)
            if lead is None:
                break
            calls.place(cx, run, lead, now)
            n -= 1
    hopper.refill(cx, run, now)


def _budget_spent(run: CampaignRun, now: float) -> bool:
    target = run.cfg.abandon_target
    if not 0 < target < 1:
        return False
    return run.abandons.budget(target, now, hour=False).allowed <= 0 and (
        run.abandons.ftc_30d(now).live > 0
    )
