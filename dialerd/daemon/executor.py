"""The command executor: each command of the core becomes AMI actions,
store writes and MQTT messages.

It runs in the core task, so it never awaits: what needs an answer (an
Originate's verdict, a lead fetch) runs in a task of its own and comes
back, if the core must know, as an event on the queue, always, whatever
fails (a ``finally`` posts it). Store writes are owed to the
:class:`~dialerd.daemon.writes.StoreWriter`, which writes them in the order
the core issued them (a DNC request first), retrying until the store takes
them.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, assert_never

import structlog

from dialerd.asterisk import mapping
from dialerd.asterisk.ami import AmiConnectionLost, AmiError, AmiUnavailable
from dialerd.asterisk.safety import UnsafeValue
from dialerd.core import commands as cmd
from dialerd.core import events as ev
from dialerd.daemon.dncjournal import DncRequest
from dialerd.daemon.hopper import HopperLoader
from dialerd.daemon.inbound import InboundCommands
from dialerd.daemon.shell import Shell
from dialerd.daemon.writes import Write, describe
from dialerd.mqtt.events import publish_command
from dialerd.store.api import LeadNotDialableError, StoreApi

log = structlog.get_logger("dialerd")

#: extra time past the ring timeout before an Originate with no verdict is
#: declared interrupted (Asterisk normally answers within the ring timeout)
ORIGINATE_GRACE_S = 30.0


class CommandExecutor:
    def __init__(self, shell: Shell) -> None:
        self.shell = shell
        self.hopper = HopperLoader(shell, self.execute)
        #: what only inbound callers need (fallback, callback, pop, record)
        self.inbound = InboundCommands(shell, self.send_actions)

    def execute(self, c: cmd.Command) -> None:
        sh = self.shell
        if sh.on_command is not None:
            sh.on_command(c)
        if sh.mqtt is not None:
            publish_command(sh.mqtt, c)
        if sh.metrics is not None:
            if isinstance(c, cmd.PlaceCall):
                sh.metrics.dials.labels(c.campaign).inc()
            elif isinstance(c, cmd.RecordOutcome):
                sh.metrics.outcomes.labels(c.campaign, c.outcome.value).inc()
        match c:
            case cmd.PlaceCall():
                sh.io_tasks.spawn(self._place_call(c))
            case cmd.HangupAgent():
                self.hangup_channel(c.channel)
            case cmd.Redirect():
                self._redirect(c)
            case cmd.Hangup():
                self._hangup(c)
            case cmd.LoadLeads():
                sh.store_tasks.spawn(self.hopper.load(c))
            case cmd.RecordOutcome():
                log.info(
                    "attempt.ended",
                    attempt_id=c.attempt_id,
                    campaign=c.campaign,
                    outcome=c.outcome.value,
                    lead_status=c.lead.status.value,
                    agent=c.agent_id,
                    detail=c.detail or None,
                )
                self._record_outcome(c)
            case cmd.ReleaseLeads():
                self.release(c.campaign, c.lead_ids)
            case cmd.AgentStateChanged():
                log.info("agent.state", agent=c.agent_id, campaign=c.campaign, state=c.state)
                sh.writer.submit(
                    Write(
                        "record_agent_event",
                        lambda s: s.record_agent_event(c.agent_id, c.campaign, c.state, c.at),
                        {"agent": c.agent_id, "state": c.state},
                    )
                )
            case cmd.SkipLead():
                log.info(
                    "lead.skipped",
                    campaign=c.campaign,
                    lead=c.lead_id,
                    reason=c.reason,
                    detail=c.detail,
                    retry_at=c.retry_at,
                )
                sh.writer.submit(
                    Write(
                        "skip_lead",
                        lambda s: s.skip_lead(c),
                        {"campaign": c.campaign, "lead": c.lead_id, "reason": c.reason},
                    )
                )
            case cmd.AgentAck():
                with contextlib.suppress(UnsafeValue):
                    self.send_actions(mapping.ack_actions(c))
            case cmd.AgentPrompt():
                if c.channel:
                    with contextlib.suppress(UnsafeValue):
                        self.send_actions(mapping.prompt_actions(c))
            case cmd.AgentAction():
                log.info(
                    "agent.key",
                    agent=c.agent_id,
                    campaign=c.campaign,
                    action=c.action,
                    detail=c.detail or None,
                    ok=c.ok,
                )
                sh.writer.submit(
                    Write(
                        "record_agent_action",
                        lambda s: s.record_agent_action(c),
                        {"agent": c.agent_id, "action": c.action},
                    )
                )
            case cmd.RecordDisposition():
                log.info(
                    "attempt.disposition",
                    attempt_id=c.attempt_id,
                    code=c.code,
                    lead_status=c.lead.status.value,
                    next_due_at=c.lead.next_due_at,
                    dnc=c.dnc,
                )
                self._record_disposition(c)
            case cmd.ScreenPop():
                pass  # for the agent's screen only: published above
            case cmd.InboundFallback():
                self.inbound.fallback(c)
            case cmd.MakeCallback():
                self.inbound.make_callback(c)
            case cmd.DisposeInbound():
                log.info(
                    "inbound.disposition",
                    call_id=c.call_id,
                    agent=c.agent_id,
                    code=c.code,
                    dnc=c.dnc,
                    callback_at=c.callback_at,
                )
                self.inbound.dispose(c, self.submit_dnc)
            case cmd.InboundPop():
                self.inbound.pop(c)
            case cmd.RecordInbound():
                self.inbound.record(c)
            case _:
                assert_never(c)

    # ------------------------------------------------------------------ AMI

    async def _place_call(self, c: cmd.PlaceCall) -> None:
        """Write-ahead, then Originate. The row exists before any ring. The
        core always hears how it went (from the ``finally``): a verdict, or
        that no call was placed."""
        sh = self.shell
        verdict: ev.Event | None = None
        sent = False
        try:
            try:
                action: dict[str, str | list[str]] | None = mapping.originate_action(c)
            except UnsafeValue as exc:
                log.error(
                    "attempt.unsafe", attempt_id=c.attempt_id, campaign=c.campaign, error=str(exc)
                )
                action, unsafe = None, str(exc)
            try:
                await sh.need_store().begin_attempt(c)
            except LeadNotDialableError as exc:
                # the store refuses a second live call for a lead: never dial it
                log.error("attempt.refused_by_store", attempt_id=c.attempt_id, error=str(exc))
                verdict = ev.CallNotPlaced(sh.clock(), c.attempt_id, "not dialable", False)
                return
            except Exception as exc:
                # no row, no call: the lead goes back to the hopper, and the
                # core places nothing until the store writes again
                sh.writer.failed("begin_attempt", exc)
                log.error("attempt.not_placed", attempt_id=c.attempt_id, error=describe(exc))
                verdict = ev.CallNotPlaced(sh.clock(), c.attempt_id, f"store: {describe(exc)}")
                return
            sh.writer.succeeded("begin_attempt", write=True)
            if action is None:
                # written, never dialed: recorded as a failed attempt
                verdict = ev.OriginateResult(
                    sh.clock(), c.attempt_id, False, 0, f"unsafe: {unsafe}"
                )
                return
            log.info(
                "attempt.dialing", attempt_id=c.attempt_id, campaign=c.campaign, lead=c.lead_id
            )
            camp = sh.campaigns.get(c.campaign)
            if camp is not None and camp.overrides:
                # a legal limit the admin lifted (dialerd.yaml legal_overrides):
                # every call placed under it is on the record
                log.warning(
                    "call.override",
                    attempt_id=c.attempt_id,
                    campaign=c.campaign,
                    overrides=list(camp.overrides),
                )
            ami = sh.need_ami()
            sent = True
            try:
                fut = ami.send(action)
                resp = await ami.wait_future(fut, c.ring_timeout_s + ORIGINATE_GRACE_S)
                ok, reason, detail = mapping.originate_result(resp)
            except AmiConnectionLost as exc:
                # the call may well be ringing: the next Resync decides its fate
                verdict = ev.OriginateResult(
                    sh.clock(), c.attempt_id, False, None, str(exc), lost=True
                )
                return
            except (AmiError, TimeoutError) as exc:
                ok, reason, detail = False, None, f"{type(exc).__name__}: {exc}"
            verdict = ev.OriginateResult(sh.clock(), c.attempt_id, ok, reason, detail)
        finally:
            if verdict is None:
                # an error no branch expected (logged by the task set), or a
                # cancel at exit: sent, the call may be live (its Hangup, a
                # Resync or the core's watchdog ends it); not sent, nothing
                # was dialed
                why = "placing the call failed"
                verdict = (
                    ev.OriginateResult(sh.clock(), c.attempt_id, False, None, why, lost=True)
                    if sent
                    else ev.CallNotPlaced(sh.clock(), c.attempt_id, why)
                )
            sh.put(verdict)

    def _redirect(self, c: cmd.Redirect) -> None:
        """Sent synchronously from the core task: nothing may sit between the
        decision and the socket on the answer path."""
        sh = self.shell
        try:
            fut = sh.need_ami().send(mapping.redirect_action(c))
        except (AmiUnavailable, UnsafeValue) as exc:
            sh.put(ev.RedirectFailed(sh.clock(), c.attempt_id, str(exc)))
            return
        sh.io_tasks.spawn(self._redirect_result(c, fut))

    async def _redirect_result(self, c: cmd.Redirect, fut: asyncio.Future[Any]) -> None:
        sh = self.shell
        ok, detail = await sh.action_result(fut)
        if not ok:
            log.warning("redirect.failed", attempt_id=c.attempt_id, detail=detail)
            sh.put(ev.RedirectFailed(sh.clock(), c.attempt_id, detail))

    def hangup_channel(self, channel: str) -> None:
        self._hangup(cmd.Hangup("", channel))

    def _hangup(self, c: cmd.Hangup) -> None:
        with contextlib.suppress(UnsafeValue):
            self.send_actions([mapping.hangup_action(c)])

    def send_actions(self, actions: list[dict[str, str | list[str]]]) -> None:
        """Fire-and-forget actions (prompts, hangups): sent in order on the one
        AMI connection, which Asterisk runs in order. Nobody waits for the
        answers: a failed one is dropped (its exception retrieved, so asyncio
        does not warn)."""
        ami = self.shell.ami
        if ami is None:
            return
        for a in actions:
            with contextlib.suppress(AmiError):
                fut = ami.send(a)
                fut.add_done_callback(lambda f: f.exception() if not f.cancelled() else None)

    # ---------------------------------------------------------------- store

    def release(self, campaign: str, lead_ids: tuple[int, ...] | list[int]) -> None:
        """Leads the core (or the hopper loader) will not dial, owed back."""
        ids = list(lead_ids)
        if ids:
            self.shell.writer.submit(
                Write(
                    "release_leads",
                    lambda s: s.release_leads(ids),
                    {"campaign": campaign, "leads": len(ids)},
                )
            )

    def _record_outcome(self, c: cmd.RecordOutcome) -> None:
        about = {"attempt_id": c.attempt_id, "lead": c.lead_id, "outcome": c.outcome.value}

        def applied(ok: bool) -> None:
            if not ok:
                # unknown attempt, or already finished (a replay): said, not hidden
                log.warning("attempt.outcome_not_applied", **about)

        self.shell.writer.submit(
            Write("finish_attempt", lambda s: s.finish_attempt(c), about, applied)
        )

    def submit_dnc(
        self,
        phone: str,
        campaign: str | None,
        source: str,
        at: float,
        about: dict[str, Any],
        request: DncRequest | None = None,
    ) -> None:
        """A do-not-call request: into the journal first (it outlives a
        SIGKILL while the store is down), then to the head of the write
        queue; once the store has it, the journal says so."""
        journal = self.shell.dnc_journal
        if request is None:
            try:
                request = journal.add(phone, campaign, source, at)
            except OSError as exc:
                log.error("dnc_journal.not_written", error=str(exc), **about)
        req = request

        async def dnc(s: StoreApi) -> int:
            return await s.dnc_add([phone], campaign, source, at)

        def written(_n: Any) -> None:
            if req is not None:
                journal.done(req)

        scope = "global" if campaign is None else "campaign"
        self.shell.writer.submit(
            Write("dnc_add", dnc, {**about, "dnc": scope}, written), first=True
        )

    def replay_dnc_journal(self) -> int:
        """At start, before any dial: the DNC requests an earlier run kept
        in its journal but never saw written (a SIGKILL during a store
        outage) go to the head of the write queue again. Idempotent: a
        number already on the list stays once."""
        pending = self.shell.dnc_journal.pending()
        if not pending:
            self.shell.dnc_journal.clear()
        for r in pending:
            log.warning("dnc_journal.replayed", request=r.id, campaign=r.campaign, source=r.source)
            self.submit_dnc(r.phone, r.campaign, r.source, r.at, {"replayed": r.id}, r)
        if pending:
            # the core screens with them at once, whether or not written yet
            added = tuple((r.campaign, r.phone, r.source) for r in pending)
            self.shell.put(ev.DncUpdated(self.shell.clock(), added=added))
        return len(pending)

    def _record_disposition(self, c: cmd.RecordDisposition) -> None:
        """The DNC request first, on its own (it must outlive anything that
        may still fail about this call); then the disposition, after the
        call's outcome (queued before it), which it needs."""
        w = self.shell.writer
        about = {"attempt_id": c.attempt_id, "lead": c.lead_id, "code": c.code}
        if c.dnc is not None:
            campaign = None if c.dnc == "global" else c.campaign
            self.submit_dnc(c.phone, campaign, f"disposition:{c.code}", c.at, about)

        def applied(ok: bool) -> None:
            if not ok:
                log.error("attempt.disposition_not_applied", **about)

        w.submit(Write("record_disposition", lambda s: s.record_disposition(c), about, applied))
