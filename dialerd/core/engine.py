"""The dialer core: timestamped events in, commands out, no I/O.

One ``DialerCore`` runs every campaign of a daemon (or of a simulation).
Everything it needs for a pacing decision is kept as counters updated on
each event, so a decision never scans leads, calls or agents.

Invariants the core itself guarantees (and tests check):
- a lead is in at most one live call, and a lead loaded twice is dialed once;
- every ``PlaceCall`` ends in exactly one ``RecordOutcome``;
- an answered call is redirected only before its connect deadline, after
  which the dialplan's fail-safe owns it (no redirect can pull a customer
  out of the safe-harbor message).
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from dialerd.campaign.model import Campaign, DialMode, RetryRules
from dialerd.core import commands as cmd
from dialerd.core import events as ev
from dialerd.core.models import AgentStatus, CallState, Lead, Outcome
from dialerd.pacing.policies import PacingSnapshot, Policy
from dialerd.pacing.registry import make_policy
from dialerd.pacing.tracker import PacingTracker
from dialerd.rules.abandon import AbandonAccounting, AbandonLock
from dialerd.rules.dispositions import decide_disposition, find
from dialerd.rules.dnc import DncList
from dialerd.rules.retry import decide, outcome_for_reason
from dialerd.rules.screening import screen_for_dial

#: ask for more leads when the hopper holds fewer than this many per line
HOPPER_LINES_FACTOR = 2
HOPPER_MIN = 10
#: after the store said "nothing due", wait this long before asking again
EXHAUSTED_RETRY_S = 5.0
#: a Reason 0 failure waits this long for the hangup cause that classifies it
CAUSE_WAIT_S = 2.0


@dataclass(slots=True)
class Agent:
    id: str
    status: AgentStatus
    since: float
    channel: str = ""
    uniqueid: str = ""
    campaign: str | None = None
    call: str | None = None
    wrap_until: float = 0.0
    calls: int = 0
    talk_s: float = 0.0
    #: paused as soon as the current call and wrap-up end
    pause_pending: bool = False
    #: the last call the agent talked on (attempt id, lead, campaign), for
    #: the disposition keys pressed in wrap-up
    last_call: tuple[str, Lead, str] | None = None
    #: a disposition pressed while still talking: applied when the call ends
    pending_dispo: tuple[str, int | None] | None = None
    #: pacing bookkeeping: since when the agent is busy with a call (reserved
    #: or talking) and which campaign's tracker counts it; same for wrap
    busy_since: float = 0.0
    busy_in: str | None = None
    wrap_in: str | None = None
    #: preview mode: the lead on the agent's screen, not dialed yet
    offer: Lead | None = None
    offer_at: float = 0.0
    #: why the agent paused (a reason name), for the state they publish
    pause_reason: str = ""


@dataclass(slots=True)
class Call:
    attempt_id: str
    campaign: str
    lead: Lead
    state: CallState
    started_at: float
    channel: str = ""
    answered_at: float | None = None
    connected_at: float | None = None
    agent_id: str | None = None
    originate_done: bool = False
    originate_ok: bool = False
    reason: int | None = None
    fail_at: float | None = None
    hung_up: bool = False
    cause: int | None = None
    safe_harbor: bool = False
    #: AMD said machine and the dialplan does not connect it
    machine: bool = False
    amd: str = ""


@dataclass(slots=True)
class CampaignStats:
    dials: int = 0
    answered: int = 0
    connected: int = 0
    abandoned: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)

    @property
    def abandon_rate(self) -> float:
        return self.abandoned / self.answered if self.answered else 0.0


@dataclass(slots=True)
class CampaignRun:
    cfg: Campaign
    policy: Policy
    hopper: deque[Lead] = field(default_factory=deque)
    hopper_ids: set[int] = field(default_factory=set)
    loading: bool = False
    exhausted_at: float | None = None
    #: ready agents, insertion order = longest idle first
    ready: dict[str, None] = field(default_factory=dict)
    agents: set[str] = field(default_factory=set)
    talking: int = 0
    wrap: int = 0
    #: attached agents with status PAUSED (kept where the status changes)
    paused_agents: int = 0
    dialing: int = 0
    #: answered calls waiting for an agent, oldest first
    waiting: deque[str] = field(default_factory=deque)
    live: int = 0
    removed: bool = False
    #: a supervisor paused it: no new dials, live calls go on
    paused: bool = False
    #: a supervisor's cap on lines per logged-in agent (None: no cap)
    max_level: float | None = None
    stats: CampaignStats = field(default_factory=CampaignStats)
    tracker: PacingTracker | None = None
    #: FTC 30-day / campaign, Ofcom 24 h, hour: fed with every outcome
    abandons: AbandonAccounting = field(default_factory=AbandonAccounting)

    def __post_init__(self) -> None:
        if self.tracker is None:
            c = self.cfg
            self.tracker = PacingTracker(c.ring_timeout_s, c.wrap_up_s, c.connect_deadline_s)

    @property
    def trk(self) -> PacingTracker:
        assert self.tracker is not None
        return self.tracker

    @property
    def active(self) -> bool:
        return self.cfg.enabled and not self.removed


def _default_ids(run_id: str) -> Callable[[], str]:
    seq = 0

    def nxt() -> str:
        nonlocal seq
        seq += 1
        return f"{run_id}-{seq:07d}"

    return nxt


class DialerCore:
    """The state machine. ``handle(event)`` is the only entry point."""

    def __init__(
        self,
        run_id: str = "run",
        id_factory: Callable[[], str] | None = None,
        *,
        screen: bool = False,
    ) -> None:
        """``screen``: check every lead just before its Originate (DNC, the
        72-hour lock, attempt limits, calling windows). The daemon always
        turns it on; the simulator and most core tests run synthetic numbers
        on a virtual clock where calling hours mean nothing, and leave it off
        (DNC, abandon accounting and the lock are kept either way)."""
        self.screen = screen
        #: do-not-call lists, kept in step by ``DncUpdated``
        self.dnc = DncList()
        #: numbers abandoned in the last 72 hours (across campaigns)
        self.lock = AbandonLock()
        self.campaigns: dict[str, CampaignRun] = {}
        self.agents: dict[str, Agent] = {}
        self.calls: dict[str, Call] = {}
        self.live_leads: set[int] = set()
        self.agent_campaign: dict[str, str] = {}
        #: the agent's channel Uniqueid -> agent id, to tell an agent leaving
        #: their room from a customer leaving it
        self.agent_by_uniqueid: dict[str, str] = {}
        self.ami_up = False
        self.draining = False
        self._new_id = id_factory or _default_ids(run_id)
        self._wraps: list[tuple[float, str]] = []
        #: failed originates waiting for their hangup cause (insertion = time order)
        self._cause_wait: dict[str, None] = {}
        self._out: list[cmd.Command] = []
        self._dirty: set[str] = set()
        #: agents looking at a preview offer (insertion order = oldest first)
        self._offers: dict[str, None] = {}

    # ------------------------------------------------------------------ API
    def handle(self, event: ev.Event) -> list[cmd.Command]:
        self._out = []
        self._dirty = set()
        now = event.now
        match event:
            case ev.Tick():
                self._tick(now)
            case ev.CampaignLoaded(campaign=c):
                self._campaign_loaded(c, now)
            case ev.CampaignRemoved(name=name):
                self._campaign_removed(name)
            case ev.LeadsLoaded():
                self._leads_loaded(event)
            case ev.AgentJoined():
                self._agent_joined(event)
            case ev.AgentLeft(agent_id=aid):
                self._agent_left(aid, now)
            case ev.CallAnswered():
                self._call_answered(event)
            case ev.CallConnected():
                self._call_connected(event)
            case ev.SafeHarborPlayed(attempt_id=aid):
                self._safe_harbor(aid)
            case ev.CallHungUp():
                self._call_hung_up(event)
            case ev.OriginateResult():
                self._originate_result(event)
            case ev.RedirectFailed(attempt_id=aid):
                self._redirect_failed(aid, now)
            case ev.AmiUp():
                self.ami_up = True
                self._dirty.update(self.campaigns)
            case ev.AmiDown():
                self.ami_up = False
            case ev.Drain():
                self._drain()
            case ev.CampaignPause(name=name, paused=paused):
                if name in self.campaigns:
                    self.campaigns[name].paused = paused
                    self._dirty.add(name)
            case ev.SetDialLevel(name=name, max_level=level):
                if name in self.campaigns:
                    self.campaigns[name].max_level = level
                    self._dirty.add(name)
            case ev.AgentPause(agent_id=aid, paused=paused, reason=why):
                self._agent_pause(aid, paused, now, why)
            case ev.Resync():
                self._resync(event)
            case ev.AgentLogout(agent_id=aid):
                agent = self.agents.get(aid)
                if agent is not None and agent.channel:
                    self._out.append(cmd.HangupAgent(aid, agent.channel))
            case ev.AmdResult():
                self._amd_result(event)
            case ev.AgentKey():
                self._agent_key(event)
            case ev.ManualDial():
                self._manual_dial(event)
            case ev.DncUpdated():
                self._dnc_updated(event)
            case ev.HistoryLoaded():
                self._history(event)
        for name in sorted(self._dirty):
            self._pace(name, now)
        return self._out

    @property
    def live_calls(self) -> int:
        return len(self.calls)

    def previewing(self, name: str) -> int:
        """Agents of campaign ``name`` looking at a preview offer."""
        return sum(1 for aid in self._offers if (a := self.agents.get(aid)) and a.campaign == name)

    def snapshot(self, name: str, now: float) -> PacingSnapshot:
        r = self.campaigns[name]
        r.trk.advance(now)
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
        )

    # ------------------------------------------------------------ campaigns
    def _campaign_loaded(self, c: Campaign, now: float) -> None:
        run = self.campaigns.get(c.name)
        if run is None or run.removed:
            run = CampaignRun(cfg=c, policy=make_policy(c.dial_mode.value, c))
            old = self.campaigns.get(c.name)
            if old is not None:  # re-added after removal: keep counters of live calls
                run.live, run.dialing, run.waiting = old.live, old.dialing, old.waiting
                run.stats = old.stats
                run.tracker = old.tracker
            self.campaigns[c.name] = run
        else:
            if c.dial_mode != run.cfg.dial_mode or c.pacing != run.cfg.pacing:
                run.policy = make_policy(c.dial_mode.value, c)
            run.cfg = c
            trk = run.trk
            trk.wrap_cfg_s, trk.connect_deadline_s = c.wrap_up_s, c.connect_deadline_s
        run.abandons.ofcom_fp_rate = c.compliance.ofcom_amd_fp_rate
        if not c.enabled:
            self._release_hopper(run)
        self._reassign_agents(now)
        self._dirty.add(c.name)

    def _campaign_removed(self, name: str) -> None:
        run = self.campaigns.get(name)
        if run is None:
            return
        run.removed = True
        self._release_hopper(run)
        for aid in list(run.agents):
            self._detach_agent(self.agents[aid])
        self.agent_campaign = {a: c for a, c in self.agent_campaign.items() if c != name}

    def _reassign_agents(self, now: float) -> None:
        mapping: dict[str, str] = {}
        for name, run in self.campaigns.items():
            if run.removed:
                continue
            for aid in run.cfg.agents:
                mapping.setdefault(aid, name)
        self.agent_campaign = mapping
        for agent in self.agents.values():
            want = mapping.get(agent.id)
            if want != agent.campaign:
                self._detach_agent(agent)
                if want is not None:
                    self._attach_agent(agent, want, now)

    def _release_hopper(self, run: CampaignRun) -> None:
        if run.hopper:
            self._out.append(cmd.ReleaseLeads(run.cfg.name, tuple(lead.id for lead in run.hopper)))
        run.hopper.clear()
        run.hopper_ids.clear()

    def _drain(self) -> None:
        self.draining = True
        for run in self.campaigns.values():
            self._release_hopper(run)

    # ---------------------------------------------------------------- leads
    def _leads_loaded(self, e: ev.LeadsLoaded) -> None:
        run = self.campaigns.get(e.campaign)
        if run is None:
            self._out.append(cmd.ReleaseLeads(e.campaign, tuple(ld.id for ld in e.leads)))
            return
        run.loading = False
        run.exhausted_at = e.now if e.exhausted else None
        dropped: list[int] = []
        for lead in e.leads:
            if not run.active or self.draining:
                dropped.append(lead.id)
            elif lead.id in run.hopper_ids or lead.id in self.live_leads:
                continue  # already held: never two calls for one lead
            else:
                run.hopper.append(lead)
                run.hopper_ids.add(lead.id)
        if dropped:
            self._out.append(cmd.ReleaseLeads(e.campaign, tuple(dropped)))
        self._dirty.add(e.campaign)

    # --------------------------------------------------------------- pacing
    def _pace(self, name: str, now: float) -> None:
        run = self.campaigns.get(name)
        if run is None or not run.active or self.draining or run.paused:
            return
        if self.ami_up and run.cfg.dial_mode is DialMode.PREVIEW:
            self._offer_previews(run, now)
        elif self.ami_up:
            n = run.policy.calls_to_place(self.snapshot(name, now))
            if run.max_level is not None:
                n = min(n, int(run.max_level * len(run.agents) + 1e-9) - run.live)
            if n > 0 and self.screen and self._budget_spent(run, now):
                # no abandon left in the 30-day or 24-hour window: dial only
                # for agents free now (no over-dial can abandon a call). The
                # predictive policy holds the target itself; this is the
                # daemon's backstop (off in the simulator, whose benchmarks
                # measure the policy alone)
                n = min(n, len(run.ready) - run.dialing - len(run.waiting))
            while n > 0:
                lead = self._next_lead(run, now)
                if lead is None:
                    break
                self._place(run, lead, now)
                n -= 1
        want = max(HOPPER_MIN, HOPPER_LINES_FACTOR * run.cfg.max_lines)
        if (
            len(run.hopper) < want
            and not run.loading
            and (run.exhausted_at is None or now - run.exhausted_at >= EXHAUSTED_RETRY_S)
        ):
            run.loading = True
            self._out.append(cmd.LoadLeads(name, want - len(run.hopper)))

    def _next_lead(self, run: CampaignRun, now: float) -> Lead | None:
        """The next lead of the hopper that may be dialed now (the others
        are skipped with their reason)."""
        while run.hopper:
            lead = run.hopper.popleft()
            run.hopper_ids.discard(lead.id)
            if lead.id in self.live_leads:
                continue
            if self._may_dial(run, lead, now):
                return lead
        return None

    def _offer_previews(self, run: CampaignRun, now: float) -> None:
        """Preview mode: every ready agent is offered a lead (screen pop and a
        tone); nothing is dialed until the agent accepts it."""
        for aid in list(run.ready):
            lead = self._next_lead(run, now)
            if lead is None:
                return
            agent = self.agents[aid]
            run.ready.pop(aid)
            agent.status = AgentStatus.PREVIEW
            agent.since = agent.offer_at = now
            agent.offer = lead
            self.live_leads.add(lead.id)  # held: never in a call meanwhile
            self._offers[aid] = None
            self._out.append(cmd.ScreenPop(aid, run.cfg.name, "offer", lead, now))
            self._out.append(cmd.AgentPrompt(aid, agent.channel, "offer"))
            self._agent_changed(agent, now)

    def _take_offer(self, agent: Agent) -> Lead | None:
        """The agent's offered lead, no longer held for them."""
        lead = agent.offer
        agent.offer = None
        self._offers.pop(agent.id, None)
        if lead is not None:
            self.live_leads.discard(lead.id)
        return lead

    def _drop_offer(self, agent: Agent, now: float, skipped: bool) -> None:
        """Give the offered lead back: due again at once (the agent left or
        paused) or after the campaign's ``preview.skip_retry_s`` (skipped).
        The agent is READY again, but not back in the pool: each caller
        decides that (pause, skip, logout, detach)."""
        lead = self._take_offer(agent)
        agent.status = AgentStatus.READY
        run = self.campaigns.get(agent.campaign or "")
        if lead is None or run is None:
            return
        if skipped:
            self._out.append(
                cmd.SkipLead(
                    run.cfg.name,
                    lead.id,
                    "preview_skipped",
                    f"agent {agent.id}",
                    now,
                    now + run.cfg.preview.skip_retry_s,
                )
            )
        else:
            self._out.append(cmd.ReleaseLeads(run.cfg.name, (lead.id,)))

    def _closed_to_agents(self, run: CampaignRun) -> str | None:
        """Why an agent's own call (a preview accept, a manual dial) cannot
        go out now, or None. A supervisor's pause stops every new dial from
        the campaign's trunk, the agent's own included."""
        if not run.active or self.draining or not self.ami_up:
            return "campaign not dialing"
        if run.paused:
            return "campaign paused"
        return None

    def _accept_offer(self, agent: Agent, now: float) -> tuple[bool, str, str]:
        run = self.campaigns.get(agent.campaign or "")
        lead = self._take_offer(agent)
        if lead is None or run is None:
            return False, "invalid", "no offer"
        closed = self._closed_to_agents(run)
        if closed is not None:
            self._out.append(cmd.ReleaseLeads(run.cfg.name, (lead.id,)))
            self._make_ready(agent, now)
            return False, "refused", closed
        if not self._may_dial(run, lead, now):  # time passed since the offer
            self._make_ready(agent, now)
            return False, "refused", "lead no longer dialable"
        self._place(run, lead, now, agent)
        return True, "calling", lead.phone

    def _budget_spent(self, run: CampaignRun, now: float) -> bool:
        target = run.cfg.abandon_target
        if not 0 < target < 1:
            return False
        return run.abandons.budget(target, now, hour=False).allowed <= 0 and (
            run.abandons.ftc_30d(now).live > 0
        )

    def _may_dial(self, run: CampaignRun, lead: Lead, now: float) -> bool:
        """The last check before the Originate (the hopper checked already;
        a DNC entry or an abandon may have come since). A refused lead is
        skipped with its reason, never dialed."""
        c = run.cfg
        if self.screen:
            verdict = screen_for_dial(c, lead, now, dnc=self.dnc, lock=self.lock)
            if not verdict.ok:
                self._out.append(
                    cmd.SkipLead(
                        c.name, lead.id, verdict.reason, verdict.detail, now, verdict.retry_at
                    )
                )
                return False
        else:
            blocked = self.dnc.is_blocked(c.name, lead.phone)
            if blocked is not None:
                self._out.append(
                    cmd.SkipLead(c.name, lead.id, blocked.partition(":")[0], blocked, now, None)
                )
                return False
        if (
            lead.callback_agent is not None
            and lead.callback_until is not None
            and now < lead.callback_until
            and lead.callback_agent not in run.ready
        ):
            # a personal callback waits for its agent until the grace ends
            self._out.append(
                cmd.SkipLead(
                    c.name,
                    lead.id,
                    "callback_agent_busy",
                    f"agent {lead.callback_agent} not ready",
                    now,
                    min(now + 10.0, lead.callback_until),
                )
            )
            return False
        return True

    def _place(
        self,
        run: CampaignRun,
        lead: Lead,
        now: float,
        agent: Agent | None = None,
        manual: bool = False,
    ) -> None:
        """Dial ``lead``. With ``agent`` (preview, manual dial) that agent is
        reserved for the call from now on and gets it when it is answered."""
        c = run.cfg
        attempt_id = self._new_id()
        call = Call(attempt_id, c.name, lead, CallState.DIALING, now)
        self.calls[attempt_id] = call
        if agent is not None:
            call.agent_id = agent.id
            agent.call = attempt_id
            agent.status = AgentStatus.RESERVED
            agent.since = now
            self._agent_changed(agent, now)
        self.live_leads.add(lead.id)
        run.dialing += 1
        run.live += 1
        run.stats.dials += 1
        run.trk.dial_started(now)
        self._out.append(
            cmd.PlaceCall(
                attempt_id=attempt_id,
                campaign=c.name,
                lead_id=lead.id,
                phone=lead.phone,
                channel=c.channel_for(lead.phone),
                caller_id=c.caller_id.ami_value(),
                ring_timeout_s=c.ring_timeout_s,
                variables=self._variables(c, attempt_id),
                started_at=now,
                manual=manual,
            )
        )

    @staticmethod
    def _variables(c: Campaign, attempt_id: str) -> dict[str, str]:
        out = {
            "DIALER_ATTEMPT": attempt_id,
            "DIALER_CAMPAIGN": c.name,
            "DIALER_SAFE_HARBOR": c.safe_harbor_sound,
        }
        if c.amd.enabled:
            out["DIALER_AMD"] = c.amd.params()
            out["DIALER_AMD_ACTION"] = c.amd.on_machine.value
            if c.amd.message_sound:
                out["DIALER_AMD_MESSAGE"] = c.amd.message_sound
        return out

    # ---------------------------------------------------------------- calls
    def _originate_result(self, e: ev.OriginateResult) -> None:
        call = self.calls.get(e.attempt_id)
        if call is None or call.originate_done:
            return
        call.originate_done = True
        call.originate_ok = e.success
        call.reason = e.reason
        if call.state is not CallState.DIALING:
            return  # already answered: the UserEvent beat the response
        if e.lost:
            # AMI dropped with the Originate outstanding: the call may ring on.
            # Its Hangup (cause) or the next Resync (gone: interrupted) ends it.
            call.reason = 0
            return
        if not e.success:
            if e.reason == 0 and not call.cause:
                # Reason 0 covers no-answer and real failures alike: the
                # hangup cause, which may come a moment later, tells them apart
                call.fail_at = e.now
                self._cause_wait[call.attempt_id] = None
                return
            self._finish(call, outcome_for_reason(e.reason, call.cause), e.now, e.detail)
        elif call.hung_up:
            # answered and gone before the dialplan raised DialerAnswered
            if call.machine:
                self._finish(call, Outcome.MACHINE, e.now, call.amd)
            else:
                self._finish(call, Outcome.CUSTOMER_HANGUP, e.now, "hung up at answer")

    def _call_answered(self, e: ev.CallAnswered) -> None:
        call = self.calls.get(e.attempt_id)
        if call is None or call.state is not CallState.DIALING:
            return
        run = self.campaigns[call.campaign]
        run.dialing -= 1
        call.answered_at = e.now
        call.channel = e.channel
        run.stats.answered += 1
        run.trk.dial_ended(call.started_at, e.now, True)
        run.trk.answered(e.now)
        reserved = self.agents.get(call.agent_id or "")
        if reserved is not None and reserved.call == call.attempt_id:
            self._connect(call, reserved, e.now)  # preview or manual: their call
            self._dirty.add(call.campaign)
            return
        call.agent_id = None
        agent_id = call.lead.callback_agent
        if agent_id not in run.ready:
            agent_id = next(iter(run.ready), None)
        if agent_id is not None:
            self._connect(call, self.agents[agent_id], e.now)
        else:
            call.state = CallState.WAITING
            run.waiting.append(call.attempt_id)
        self._dirty.add(call.campaign)

    def _connect(self, call: Call, agent: Agent, now: float) -> None:
        run = self.campaigns[call.campaign]
        run.ready.pop(agent.id, None)
        self._busy_start(agent, now)
        agent.status = AgentStatus.RESERVED
        agent.call = call.attempt_id
        call.state = CallState.CONNECTING
        call.agent_id = agent.id
        self._out.append(cmd.Redirect(call.attempt_id, call.channel, agent.id))
        # after the Redirect: nothing may delay the customer's connection
        c = run.cfg
        if c.connect_tone or c.connect_announcement:
            tone = "connected" if c.connect_tone else ""
            self._out.append(
                cmd.AgentPrompt(agent.id, agent.channel, tone, c.connect_announcement or "")
            )
        self._out.append(
            cmd.ScreenPop(agent.id, call.campaign, "connect", call.lead, now, call.attempt_id)
        )

    def _call_connected(self, e: ev.CallConnected) -> None:
        call = self.calls.get(e.attempt_id)
        if call is None or call.state is not CallState.CONNECTING:
            return
        call.state = CallState.CONNECTED
        call.connected_at = e.now
        run = self.campaigns[call.campaign]
        run.stats.connected += 1
        agent = self.agents.get(call.agent_id or "")
        if agent is not None and agent.call == call.attempt_id:
            agent.status = AgentStatus.TALKING
            agent.since = e.now
            run.talking += 1
            self._agent_changed(agent, e.now)

    def _safe_harbor(self, attempt_id: str) -> None:
        call = self.calls.get(attempt_id)
        if call is None:
            return
        call.safe_harbor = True
        if call.state is CallState.WAITING:
            self._expire_waiting(call)

    def _expire_waiting(self, call: Call) -> None:
        run = self.campaigns[call.campaign]
        try:
            run.waiting.remove(call.attempt_id)
        except ValueError:
            pass
        call.state = CallState.ABANDONING

    def _redirect_failed(self, attempt_id: str, now: float) -> None:
        call = self.calls.get(attempt_id)
        if call is None or call.state is not CallState.CONNECTING:
            return
        call.state = CallState.ABANDONING
        agent = self.agents.get(call.agent_id or "")
        call.agent_id = None
        if agent is not None and agent.call == attempt_id:
            agent.call = None
            self._busy_end(agent, now, observe=False)
            self._make_ready(agent, now)

    def _call_hung_up(self, e: ev.CallHungUp) -> None:
        call = self.calls.get(e.attempt_id)
        if call is None:
            return
        call.hung_up = True
        if e.cause or call.cause is None:
            call.cause = e.cause  # a ;1 half may say 0 where the ;2 half has the cause
        if call.state is CallState.DIALING:
            # not answered: the OriginateResponse says why; it finishes the call
            if call.originate_done:
                if call.originate_ok:
                    outcome = Outcome.MACHINE if call.machine else Outcome.CUSTOMER_HANGUP
                elif call.reason == 0 and not call.cause:
                    # wait for a half that carries the cause (or the tick)
                    if call.attempt_id not in self._cause_wait:
                        call.fail_at = e.now
                        self._cause_wait[call.attempt_id] = None
                    return
                else:
                    outcome = outcome_for_reason(call.reason, call.cause)
                self._cause_wait.pop(call.attempt_id, None)
                self._finish(call, outcome, e.now, f"cause {call.cause}")
            return
        if call.state is CallState.CONNECTED:
            self._finish(call, Outcome.ANSWERED, e.now)
        elif call.state is CallState.CONNECTING:
            self._finish(call, Outcome.CUSTOMER_HANGUP, e.now, "hung up while connecting")
        else:  # WAITING or ABANDONING
            run = self.campaigns[call.campaign]
            late = call.answered_at is not None and (
                e.now - call.answered_at >= run.cfg.connect_deadline_s
            )
            if call.safe_harbor or late or call.state is CallState.ABANDONING:
                self._finish(call, Outcome.ABANDONED, e.now)
            else:
                self._finish(call, Outcome.CUSTOMER_HANGUP, e.now, "hung up before connect")

    def _finish(self, call: Call, outcome: Outcome, now: float, detail: str = "") -> None:
        del self.calls[call.attempt_id]
        self.live_leads.discard(call.lead.id)
        run = self.campaigns[call.campaign]
        run.live -= 1
        trk = run.trk
        if call.state is CallState.DIALING:
            run.dialing -= 1
            trk.dial_ended(
                call.started_at,
                now,
                None if outcome is Outcome.INTERRUPTED else outcome.live_answer,
            )
            if outcome.live_answer:
                trk.answered(now)
        elif call.state is CallState.WAITING:
            self._expire_waiting(call)
        st = run.stats
        run.abandons.record(outcome, now)
        if outcome.abandon:
            self.lock.abandoned(call.lead.phone, now)
        if call.amd:
            detail = f"{call.amd}; {detail}" if detail else call.amd
        st.outcomes[outcome.value] = st.outcomes.get(outcome.value, 0) + 1
        if outcome.abandon:
            st.abandoned += 1
            trk.abandoned(now)
        if call.state is CallState.DIALING and outcome.live_answer:
            st.answered += 1  # answered without a DialerAnswered event
        agent = self.agents.get(call.agent_id or "")
        if agent is not None and agent.call == call.attempt_id:
            agent.call = None
            self._busy_end(agent, now, observe=agent.status is AgentStatus.TALKING)
            if agent.status is AgentStatus.TALKING:
                agent.last_call = (call.attempt_id, call.lead, call.campaign)
                run_a = self.campaigns.get(agent.campaign or "")
                if run_a is not None:
                    run_a.talking -= 1
                agent.calls += 1
                if call.connected_at is not None:
                    agent.talk_s += now - call.connected_at
                self._start_wrap(agent, run.cfg.wrap_up_s, now)
            elif agent.status is AgentStatus.RESERVED:
                self._make_ready(agent, now)
        self._out.append(
            cmd.RecordOutcome(
                attempt_id=call.attempt_id,
                campaign=call.campaign,
                lead_id=call.lead.id,
                outcome=outcome,
                ended_at=now,
                lead=decide(run.cfg.retry, call.lead.id, call.lead.attempts, outcome, now),
                answered_at=call.answered_at,
                connected_at=call.connected_at,
                agent_id=call.agent_id,
                cause=call.cause,
                detail=detail,
            )
        )
        self._dirty.add(call.campaign)
        if agent is not None and agent.pending_dispo is not None and agent.last_call:
            key, minutes = agent.pending_dispo
            agent.pending_dispo = None
            self._dispose(agent, key, minutes, now)

    # ------------------------------------------------------------- resync
    def _resync(self, e: ev.Resync) -> None:
        """Apply a snapshot of what is live in Asterisk (see ``ev.Resync``)."""
        now = e.now
        live = {c.attempt_id: c for c in e.calls}
        # agents first: an adopted call below may make one of them busy
        in_room = {a.agent_id for a in e.agents}
        for aid in [a for a in self.agents if a not in in_room]:
            self._agent_left(aid, now)
        for a in e.agents:
            self._agent_joined(a)
        # our calls that ended while AMI was away: close them by what we knew
        for call in list(self.calls.values()):
            if call.attempt_id in live or call.started_at >= now:
                continue  # live, or placed after the snapshot was taken
            if call.state is CallState.CONNECTED:
                outcome = Outcome.ANSWERED
            elif call.state is CallState.DIALING:
                outcome = Outcome.INTERRUPTED
            else:
                outcome = Outcome.ABANDONED  # the dialplan's fail-safe had it
            self._cause_wait.pop(call.attempt_id, None)
            self._finish(call, outcome, now, "ended unseen (AMI was away)")
        # attempts an earlier run left open: adopt the live, close the rest
        for oa in e.open_attempts:
            if oa.attempt_id in self.calls or oa.lead.id in self.live_leads:
                continue
            run = self.campaigns.get(oa.campaign)
            lc = live.get(oa.attempt_id)
            if run is not None and lc is not None:
                self._adopt(run, oa, lc, now)
                continue
            rules = run.cfg.retry if run is not None else RetryRules()
            self._out.append(
                cmd.RecordOutcome(
                    attempt_id=oa.attempt_id,
                    campaign=oa.campaign,
                    lead_id=oa.lead.id,
                    outcome=Outcome.INTERRUPTED,
                    ended_at=now,
                    lead=decide(rules, oa.lead.id, oa.lead.attempts, Outcome.INTERRUPTED, now),
                    detail="left open by an earlier run, not live in Asterisk",
                )
            )
        self._dirty.update(self.campaigns)

    def _adopt(self, run: CampaignRun, oa: ev.OpenAttempt, lc: ev.LiveCall, now: float) -> None:
        """Take over a live call of an earlier run: its end is recorded once
        and its lead stays out of the hopper until then."""
        call = Call(oa.attempt_id, oa.campaign, oa.lead, CallState.DIALING, oa.started_at)
        call.channel = lc.channel
        self.calls[call.attempt_id] = call
        self.live_leads.add(oa.lead.id)
        run.live += 1
        if lc.where == "ringing":
            # its OriginateResponse went to the dead run: the hangup cause
            # classifies it (Reason 0 semantics), an answer goes the usual way
            call.originate_done, call.reason = True, 0
            run.dialing += 1
            run.trk.dial_started(now)
            return
        call.answered_at = now  # not known exactly: it was answered before now
        run.stats.answered += 1
        agent = self.agents.get(lc.agent_id or "")
        if lc.where == "room" and agent is not None and agent.call is None:
            call.state = CallState.CONNECTED
            call.connected_at = now
            call.agent_id = agent.id
            run.stats.connected += 1
            run_a = self.campaigns.get(agent.campaign or "")
            if run_a is not None:
                run_a.ready.pop(agent.id, None)
                if agent.status is AgentStatus.WRAP:
                    run_a.wrap -= 1
                elif agent.status is AgentStatus.PAUSED:
                    run_a.paused_agents -= 1
                run_a.talking += 1
            self._busy_start(agent, now)
            agent.status = AgentStatus.TALKING
            agent.call = call.attempt_id
            agent.since = now
            self._agent_changed(agent, now)
        else:
            # answered, waiting or hearing the message: the fail-safe owns it
            call.state = CallState.ABANDONING

    # --------------------------------------------------------------- agents
    def _agent_joined(self, e: ev.AgentJoined) -> None:
        agent = self.agents.get(e.agent_id)
        if agent is None:
            agent = Agent(e.agent_id, AgentStatus.READY, e.now)
            self.agents[e.agent_id] = agent
        self.agent_by_uniqueid.pop(agent.uniqueid, None)
        agent.channel, agent.uniqueid = e.channel, e.uniqueid
        self.agent_by_uniqueid[e.uniqueid] = agent.id
        want = self.agent_campaign.get(e.agent_id)
        if agent.campaign != want:
            self._detach_agent(agent)
            if want is not None:
                self._attach_agent(agent, want, e.now)
        elif want is not None and agent.status is AgentStatus.READY:
            self._make_ready(agent, e.now)
        if want is None:
            self._agent_changed(agent, e.now)

    def _attach_agent(self, agent: Agent, campaign: str, now: float) -> None:
        run = self.campaigns[campaign]
        agent.campaign = campaign
        run.agents.add(agent.id)
        if agent.status is AgentStatus.TALKING:
            run.talking += 1
        elif agent.status is AgentStatus.WRAP:
            run.wrap += 1
            run.trk.wrap_started(agent.wrap_until)
            agent.wrap_in = campaign
        elif agent.status is AgentStatus.READY:
            self._make_ready(agent, now)
        elif agent.status is AgentStatus.PAUSED:
            run.paused_agents += 1
        self._dirty.add(campaign)

    def _detach_agent(self, agent: Agent) -> None:
        run = self.campaigns.get(agent.campaign or "")
        if run is not None:
            run.agents.discard(agent.id)
            run.ready.pop(agent.id, None)
            if agent.status is AgentStatus.TALKING:
                run.talking -= 1
            elif agent.status is AgentStatus.WRAP:
                run.wrap -= 1
            elif agent.status is AgentStatus.PAUSED:
                run.paused_agents -= 1
            self._dirty.add(run.cfg.name)
        if agent.status is AgentStatus.PREVIEW:
            self._drop_offer(agent, agent.since, skipped=False)
        self._wrap_end(agent, None)
        agent.campaign = None

    def _agent_left(self, agent_id: str, now: float) -> None:
        agent = self.agents.pop(agent_id, None)
        if agent is None:
            return
        campaign = agent.campaign
        self.agent_by_uniqueid.pop(agent.uniqueid, None)
        self._detach_agent(agent)
        self._busy_end(agent, now, observe=False)
        if agent.call is not None:
            call = self.calls.get(agent.call)
            if call is not None and call.state is CallState.CONNECTING:
                # the customer is on the way into an empty room: let the
                # dialplan fail-safe take it rather than strand them
                call.state = CallState.ABANDONING
        agent.status = AgentStatus.PAUSED
        self._out.append(cmd.AgentStateChanged(agent_id, campaign, "logged_out", now))

    def _start_wrap(self, agent: Agent, wrap_s: float, now: float) -> None:
        if wrap_s <= 0:
            self._make_ready(agent, now)
            return
        agent.status = AgentStatus.WRAP
        agent.since = now
        agent.wrap_until = now + wrap_s
        run = self.campaigns.get(agent.campaign or "")
        if run is not None:
            run.wrap += 1
            run.trk.wrap_started(agent.wrap_until)
            agent.wrap_in = run.cfg.name
        heapq.heappush(self._wraps, (agent.wrap_until, agent.id))
        self._agent_changed(agent, now)

    def _agent_pause(self, agent_id: str, paused: bool, now: float, reason: str = "") -> None:
        """Pause takes a ready agent out of the pool at once; a busy agent is
        paused when the call and its wrap-up end (never mid-call)."""
        agent = self.agents.get(agent_id)
        if agent is None:
            return
        if not paused:
            agent.pause_pending = False
            if agent.status is AgentStatus.PAUSED:
                self._make_ready(agent, now)
            return
        agent.pause_reason = reason
        if agent.status is AgentStatus.PREVIEW:
            self._drop_offer(agent, now, skipped=False)  # READY, out of the pool
        if agent.status is AgentStatus.READY:
            run = self.campaigns.get(agent.campaign or "")
            if run is not None:
                run.ready.pop(agent.id, None)
                run.paused_agents += 1
                self._dirty.add(run.cfg.name)
            agent.status = AgentStatus.PAUSED
            agent.since = now
            self._agent_changed(agent, now)
        elif agent.status is not AgentStatus.PAUSED:
            agent.pause_pending = True

    def _make_ready(self, agent: Agent, now: float) -> None:
        """The agent can take a call: first the oldest waiting one, if any."""
        run = self.campaigns.get(agent.campaign or "")
        if agent.status is AgentStatus.PAUSED and run is not None:
            run.paused_agents -= 1
        if agent.status is AgentStatus.WRAP and run is not None:
            run.wrap -= 1
            if agent.wrap_in == run.cfg.name:
                run.trk.wrap_observed(now - agent.since)
        self._wrap_end(agent, now)
        agent.since = now
        if agent.pause_pending:
            agent.pause_pending = False
            agent.status = AgentStatus.PAUSED
            self._agent_changed(agent, now)
            if run is not None:
                run.paused_agents += 1
                self._dirty.add(run.cfg.name)
            return
        agent.status = AgentStatus.READY
        if run is None:
            return
        self._dirty.add(run.cfg.name)
        while run.waiting:
            call = self.calls[run.waiting.popleft()]
            if call.answered_at is not None and (
                now - call.answered_at < run.cfg.connect_deadline_s
            ):
                self._connect(call, agent, now)
                self._agent_changed(agent, now)
                return
            call.state = CallState.ABANDONING
        run.ready[agent.id] = None
        self._agent_changed(agent, now)

    def _busy_start(self, agent: Agent, now: float) -> None:
        """The agent took a call (reserved for it): the pacing tracker counts
        it as busy from now on."""
        self._busy_end(agent, now, observe=False)
        run = self.campaigns.get(agent.campaign or "")
        if run is not None:
            agent.busy_since = now
            agent.busy_in = run.cfg.name
            run.trk.talk_started(now)

    def _busy_end(self, agent: Agent, now: float, observe: bool) -> None:
        run = self.campaigns.get(agent.busy_in or "")
        if run is not None:
            run.trk.talk_ended(agent.busy_since, now, observe)
        agent.busy_in = None

    def _wrap_end(self, agent: Agent, now: float | None) -> None:
        run = self.campaigns.get(agent.wrap_in or "")
        if run is not None:
            run.trk.wrap_ended(agent.wrap_until)
        agent.wrap_in = None

    def _agent_changed(self, agent: Agent, now: float) -> None:
        reason = agent.pause_reason if agent.status is AgentStatus.PAUSED else ""
        self._out.append(
            cmd.AgentStateChanged(agent.id, agent.campaign, agent.status.value, now, reason)
        )

    # ----------------------------------------------------------------- time
    def _tick(self, now: float) -> None:
        while self._cause_wait:
            aid = next(iter(self._cause_wait))
            call = self.calls.get(aid)
            if call is not None and call.fail_at is not None and now - call.fail_at < CAUSE_WAIT_S:
                break
            del self._cause_wait[aid]
            if call is not None and call.state is CallState.DIALING:
                self._finish(call, outcome_for_reason(call.reason, call.cause), now, "no cause")
        while self._wraps and self._wraps[0][0] <= now:
            until, aid = heapq.heappop(self._wraps)
            agent = self.agents.get(aid)
            if agent is not None and agent.status is AgentStatus.WRAP and agent.wrap_until == until:
                self._make_ready(agent, now)
        for aid in list(self._offers):
            agent = self.agents.get(aid)
            run = self.campaigns.get(agent.campaign or "") if agent is not None else None
            if agent is None or run is None:
                self._offers.pop(aid, None)
                continue
            timeout = run.cfg.preview.timeout_s
            if timeout > 0 and now - agent.offer_at >= timeout:
                ok, _prompt, detail = self._accept_offer(agent, now)
                self._out.append(
                    cmd.AgentAction(aid, agent.campaign, "preview_timeout", detail, ok, now)
                )
        for name, run in self.campaigns.items():
            while run.waiting:
                call = self.calls[run.waiting[0]]
                if call.answered_at is None or now - call.answered_at < run.cfg.connect_deadline_s:
                    break
                run.waiting.popleft()
                call.state = CallState.ABANDONING
            self._dirty.add(name)

    # ------------------------------------------------------- compliance
    def _amd_result(self, e: ev.AmdResult) -> None:
        call = self.calls.get(e.attempt_id)
        if call is None:
            return
        call.amd = f"amd {e.status} {e.cause}".strip()
        if e.status == "MACHINE" and e.action != "connect":
            call.machine = True
            call.amd += f" ({e.action or 'hangup'})"
        elif e.status == "MACHINE":
            call.amd += " (connected)"

    def _dnc_updated(self, e: ev.DncUpdated) -> None:
        if e.replace:
            self.dnc = DncList()
        for campaign, phone, source in e.added:
            self.dnc.add(phone, campaign, source)
        for campaign, phone in e.removed:
            self.dnc.remove(phone, campaign)

    def _history(self, e: ev.HistoryLoaded) -> None:
        for campaign, phone, outcome, at in e.outcomes:
            try:
                o = Outcome(outcome)
            except ValueError:
                continue
            run = self.campaigns.get(campaign)
            if run is not None:
                run.abandons.record(o, at)
            if o.abandon:
                self.lock.abandoned(phone, at)
        self._dirty.update(self.campaigns)

    # ----------------------------------------------------------- agent keys
    def _agent_key(self, e: ev.AgentKey) -> None:
        """An agent's key: act, answer the waiting dialplan, record it."""
        agent = self.agents.get(e.agent_id)
        if agent is None:
            ok, prompt, detail = False, "invalid", "not logged in"
        else:
            ok, prompt, detail = self._key(agent, e)
        if e.channel:
            self._out.append(cmd.AgentAck(e.channel, ok, prompt))
        action = f"disposition {e.key}" if e.key.isdigit() else e.key
        detail = f"{e.data} {detail}".strip() if e.data else detail
        campaign = agent.campaign if agent is not None else None
        self._out.append(cmd.AgentAction(e.agent_id, campaign, action, detail, ok, e.now))

    def _key(self, agent: Agent, e: ev.AgentKey) -> tuple[bool, str, str]:
        now, st = e.now, agent.status
        on_call = st in (AgentStatus.TALKING, AgentStatus.RESERVED)
        if e.key.isdigit():
            minutes = int(e.data) if e.data.isdigit() else None
            if on_call and agent.call:
                run = self.campaigns.get(agent.campaign or "")
                if run is None or find(run.cfg.compliance.dispositions, dtmf=e.key) is None:
                    return False, "invalid", "no such disposition key"
                agent.pending_dispo = (e.key, minutes)  # applied when the call ends
                return True, "ok", "applied when the call ends"
            code = self._dispose(agent, e.key, minutes, now)
            if code is None:
                return False, "invalid", "no call to dispose or no such key"
            return True, "ok", code
        if e.key == "ready":
            if st is AgentStatus.PREVIEW:
                return self._accept_offer(agent, now)
            if st in (AgentStatus.WRAP, AgentStatus.PAUSED):
                self._make_ready(agent, now)
                return True, "ready", f"from {st.value}"
            if agent.pause_pending:
                agent.pause_pending = False
                return True, "ready", "pause cancelled"
            if st is AgentStatus.READY:
                return True, "ready", "already ready"
            return False, "invalid", "on a call"
        if e.key == "pause":
            if st is AgentStatus.PAUSED:
                agent.pause_reason = e.data
                self._agent_changed(agent, now)
                return True, "paused", "reason changed"
            self._agent_pause(agent.id, True, now, e.data)
            return True, "paused", "after the call" if agent.pause_pending else ""
        if e.key == "skip":
            if st is not AgentStatus.PREVIEW:
                return False, "invalid", "no offer"
            self._drop_offer(agent, now, skipped=True)
            self._make_ready(agent, now)
            return True, "ok", ""
        if e.key == "logout":
            if on_call:
                return False, "invalid", "on a call"
            if st is AgentStatus.PREVIEW:
                self._drop_offer(agent, now, skipped=False)
            return True, "goodbye", ""  # the dialplan hangs up: AgentLeft follows
        return False, "invalid", f"unknown key {e.key!r}"

    def _manual_dial(self, e: ev.ManualDial) -> None:
        agent = self.agents.get(e.agent_id)
        if agent is None:
            ok, prompt, detail = False, "invalid", "not logged in"
        else:
            ok, prompt, detail = self._manual(agent, e)
        if not ok and e.lead.id not in self.live_leads:
            # the shell holds the lead for this call: hand it back
            self._out.append(cmd.ReleaseLeads(e.lead.campaign, (e.lead.id,)))
        if e.channel:
            self._out.append(cmd.AgentAck(e.channel, ok, prompt))
        campaign = agent.campaign if agent is not None else None
        self._out.append(
            cmd.AgentAction(
                e.agent_id, campaign, "dial", f"{e.lead.phone} {detail}".strip(), ok, e.now
            )
        )

    def _manual(self, agent: Agent, e: ev.ManualDial) -> tuple[bool, str, str]:
        """A number the agent keyed: dialed for that agent alone, after the
        same DNC, calling-hours and 72-hour checks as any lead (not the
        attempt limits: a person chose to call)."""
        now, lead = e.now, e.lead
        run = self.campaigns.get(agent.campaign or "")
        if run is None or lead.campaign != run.cfg.name:
            return False, "refused", "not in a campaign"
        closed = self._closed_to_agents(run)
        if closed is not None:
            return False, "refused", closed
        if agent.status in (AgentStatus.TALKING, AgentStatus.RESERVED):
            return False, "invalid", "on a call"
        if lead.id in self.live_leads:
            return False, "refused", "already in a call"
        c = run.cfg
        if self.screen:
            verdict = screen_for_dial(c, lead, now, dnc=self.dnc, lock=self.lock, manual=True)
            if not verdict.ok:
                return False, "refused", verdict.reason
        elif self.dnc.is_blocked(c.name, lead.phone) is not None:
            return False, "refused", "dnc"
        if lead.id in run.hopper_ids:  # it is this agent's call now
            run.hopper_ids.discard(lead.id)
            run.hopper = deque(ld for ld in run.hopper if ld.id != lead.id)
        st = agent.status
        if st is AgentStatus.PREVIEW:
            self._drop_offer(agent, now, skipped=False)
        elif st is AgentStatus.READY:
            run.ready.pop(agent.id, None)
        elif st is AgentStatus.WRAP:
            run.wrap -= 1
            self._wrap_end(agent, now)
        elif st is AgentStatus.PAUSED:
            run.paused_agents -= 1
            agent.pause_pending = True  # back to the pause after this call
        self._place(run, lead, now, agent, manual=True)
        self._dirty.add(c.name)
        return True, "calling", ""

    def _dispose(self, agent: Agent, key: str, minutes: int | None, now: float) -> str | None:
        """Record the disposition of the agent's last call; its code, or None
        when there is no call to dispose or the key means nothing."""
        if agent.last_call is None:
            return None
        attempt_id, lead, campaign = agent.last_call
        run = self.campaigns.get(campaign)
        if run is None:
            return None
        dispo = find(run.cfg.compliance.dispositions, dtmf=key)
        if dispo is None:
            return None
        agent.last_call = None
        cb_at = now + minutes * 60 if minutes else None
        d = decide_disposition(dispo, lead.id, lead.attempts + 1, now, callback_at=cb_at)
        personal = dispo.callback and run.cfg.callback_personal
        due = d.lead.next_due_at
        self._out.append(
            cmd.RecordDisposition(
                attempt_id=attempt_id,
                campaign=campaign,
                lead_id=lead.id,
                phone=lead.phone,
                code=dispo.code,
                lead=d.lead,
                at=now,
                dnc=None if d.dnc is None else d.dnc.value,
                callback=dispo.callback,
                callback_agent=agent.id if personal else None,
                callback_until=(
                    due + run.cfg.callback_grace_s if personal and due is not None else None
                ),
            )
        )
        if d.dnc is not None:
            self.dnc.add(
                lead.phone,
                None if d.dnc.value == "global" else campaign,
                f"disposition:{dispo.code}",
            )
        if agent.status is AgentStatus.WRAP:
            self._make_ready(agent, now)  # the disposition ends the wrap-up
        return dispo.code
