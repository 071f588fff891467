"""The dialer core: timestamped events in, commands out, no I/O.

One ``DialerCore`` runs every campaign of a daemon (or of a simulation).
Everything it needs for a pacing decision is kept as counters updated on
each event, so a decision never scans leads, calls or agents.

Invariants the core itself guarantees (and tests check):
- a lead is in at most one live call, and a lead loaded twice is dialed once;
- every ``PlaceCall`` ends in exactly one ``RecordOutcome``;
- an answered call is redirected only before its connect deadline, after
  which the dialplan's fail-safe owns it (no redirect can pull a customer
  out of the safe-harbor message);
- an agent's status and a call's state move only along the tables of
  :mod:`dialerd.core.state`, which also keeps the counters.

This module only dispatches: each event goes to the part that owns it (see
:mod:`dialerd.core.context` for the parts and their layering), then every
campaign the event touched is re-paced, in name order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import assert_never

from dialerd.core import (
    agents,
    calls,
    campaigns,
    compliance,
    hopper,
    inbound,
    keys,
    preview,
    recovery,
    timers,
)
from dialerd.core import commands as cmd
from dialerd.core import events as ev
from dialerd.core.context import CoreContext
from dialerd.core.state import Agent, Call, CampaignRun, InboundCall, QueueRun
from dialerd.pacing.policies import PacingSnapshot
from dialerd.rules.abandon import AbandonLock
from dialerd.rules.dnc import DncList

__all__ = ["DialerCore"]


def _default_ids(run_id: str) -> Callable[[], str]:
    seq = 0

    def nxt() -> str:
        nonlocal seq
        seq += 1
        return f"{run_id}-{seq:07d}"

    return nxt


class DialerCore:
    """The state machine. ``handle(event)`` is the only entry point; the
    attributes below are for the shells to read."""

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
        self._cx = CoreContext(id_factory or _default_ids(run_id), screen)

    def handle(self, event: ev.Event) -> list[cmd.Command]:
        cx = self._cx
        cx.out = []
        cx.dirty = set()
        match event:
            case ev.Tick(now=now):
                timers.tick(cx, now)
            case ev.CampaignLoaded(now=now, campaign=c):
                campaigns.loaded(cx, c, now)
            case ev.CampaignRemoved(now=now, name=name):
                campaigns.removed(cx, name, now)
            case ev.LeadsLoaded():
                hopper.leads_loaded(cx, event)
            case ev.AgentJoined():
                agents.joined(cx, event)
            case ev.AgentLeft(now=now, agent_id=aid):
                agents.left(cx, aid, now)
            case ev.CallAnswered():
                calls.answered(cx, event)
            case ev.CallConnected(now=now, attempt_id=aid, agent_id=agent):
                if aid in cx.inbound:
                    inbound.connected(cx, cx.inbound[aid], agent, now)
                else:
                    calls.connected(cx, event)
            case ev.SafeHarborPlayed(attempt_id=aid):
                calls.safe_harbor(cx, aid)
            case ev.CallHungUp(now=now, attempt_id=aid, cause=cause):
                if aid in cx.inbound:
                    inbound.hung_up(cx, cx.inbound[aid], cause, now)
                else:
                    calls.hung_up(cx, event)
            case ev.OriginateResult():
                calls.originate_result(cx, event)
            case ev.CallNotPlaced():
                calls.not_placed(cx, event)
            case ev.StoreDown(reason=why):
                campaigns.store(cx, why)
            case ev.StoreUp():
                campaigns.store(cx, None)
            case ev.RedirectFailed(now=now, attempt_id=aid):
                if aid in cx.inbound:
                    inbound.redirect_failed(cx, cx.inbound[aid], now)
                else:
                    calls.redirect_failed(cx, aid, now)
            case ev.AmiUp():
                campaigns.ami(cx, up=True)
            case ev.AmiDown():
                campaigns.ami(cx, up=False)
            case ev.Drain(now=now):
                campaigns.drain(cx, now)
            case ev.CampaignPause(name=name, paused=paused):
                campaigns.pause(cx, name, paused)
            case ev.SetDialLevel(name=name, max_level=level):
                campaigns.set_dial_level(cx, name, level)
            case ev.AgentPause(now=now, agent_id=aid, paused=paused, reason=why):
                agents.pause(cx, aid, paused, now, why)
            case ev.AgentLogout(agent_id=aid):
                agents.logout(cx, aid)
            case ev.Resync():
                recovery.resync(cx, event)
            case ev.AmdResult():
                calls.amd_result(cx, event)
            case ev.AgentKey():
                keys.agent_key(cx, event)
            case ev.ManualDial():
                keys.manual_dial(cx, event)
            case ev.DncUpdated():
                compliance.dnc_updated(cx, event)
            case ev.HistoryLoaded():
                compliance.history_loaded(cx, event)
            case ev.QueuesLoaded():
                inbound.queues_loaded(cx, event)
            case ev.InboundArrived():
                inbound.arrived(cx, event)
            case ev.CallbackRequested():
                inbound.callback_requested(cx, event)
            case _:
                assert_never(event)
        for name in sorted(cx.dirty):
            campaigns.pace(cx, name, event.now)
        return cx.out

    # ------------------------------------------------------- for the shells
    @property
    def campaigns(self) -> dict[str, CampaignRun]:
        return self._cx.campaigns

    @property
    def agents(self) -> dict[str, Agent]:
        return self._cx.agents

    @property
    def calls(self) -> dict[str, Call]:
        return self._cx.calls

    @property
    def live_calls(self) -> int:
        """Outbound calls and inbound callers the core still holds."""
        return len(self._cx.calls) + len(self._cx.inbound)

    @property
    def queues(self) -> dict[str, QueueRun]:
        return self._cx.queues

    @property
    def inbound(self) -> dict[str, InboundCall]:
        """Inbound callers the core holds, by call id (their Uniqueid)."""
        return self._cx.inbound

    @property
    def live_leads(self) -> set[int]:
        """Leads in a live call or on an agent's preview screen."""
        return self._cx.live_leads

    @property
    def agent_by_uniqueid(self) -> dict[str, str]:
        return self._cx.agent_by_uniqueid

    @property
    def agent_campaign(self) -> dict[str, str]:
        return self._cx.agent_campaign

    @property
    def dnc(self) -> DncList:
        return self._cx.dnc

    @property
    def lock(self) -> AbandonLock:
        return self._cx.lock

    @property
    def screen(self) -> bool:
        return self._cx.screen

    @property
    def ami_up(self) -> bool:
        return self._cx.ami_up

    @property
    def draining(self) -> bool:
        return self._cx.draining

    @property
    def store_down(self) -> str | None:
        """Why the store cannot record (no new dials meanwhile), or None."""
        return self._cx.store_down

    def previewing(self, name: str) -> int:
        """Agents of campaign ``name`` looking at a preview offer."""
        return preview.previewing(self._cx, name)

    def snapshot(self, name: str, now: float) -> PacingSnapshot:
        """What the pacing policy of campaign ``name`` sees at ``now``."""
        return campaigns.snapshot(self._cx, name, now)
