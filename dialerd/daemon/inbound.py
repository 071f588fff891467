"""The inbound commands of the core, carried out: a caller's fallback, the
callback lead they asked for, their screen pop and their record.

A caller's Redirect into an agent's room is the outbound path's own
(``cmd.Redirect``, attempt id = the caller's Uniqueid); what is here is
what only callers have.

- ``InboundFallback``: the fallback's sounds set on the caller's channel
  (AMI Setvar, each value checked), then a Redirect to
  ``[dialer-inbound-fallback]`` ``callback`` or ``message``.
- ``MakeCallback``: the caller pressed 1. The lead (the campaign's own for
  that number, else a new one) becomes a callback due at the campaign's
  earliest legal time for the number (``rules.windows.next_allowed``, the
  screening's own rule), through the write queue: a store fault delays it,
  never loses it. The dialplan waits 3 s for ``DIALER_ACK``: ``ok`` once
  the lead is written, or, if the store is slower than ``ACK_WAIT_S``,
  ``ok`` anyway, since the write is owed and will be written (logged);
  ``no`` when there is nothing to book (campaign not running, number on a
  DNC list, no calling window in sight) or the store refused the write.
- ``DisposeInbound``: the agent's disposition of a caller: the DNC entry
  first (it must outlive anything else about the call), the code on the
  caller's row, and a callback lead for the caller when the code asks for
  one, all through the write queue.
- ``InboundPop``: MQTT ``agent/<id>/screenpop`` (kind ``inbound``) with the
  leads the store holds for the caller's number and their last attempts.
- ``RecordInbound``: the caller's row in ``inbound_calls``, owed to the
  write queue (``Shell.submit_inbound_record``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import structlog

from dialerd.asterisk import mapping
from dialerd.asterisk.ami import AmiError
from dialerd.asterisk.safety import UnsafeValue
from dialerd.core import commands as cmd
from dialerd.daemon.shell import Shell
from dialerd.daemon.writes import Write, describe
from dialerd.mqtt.events import publish_inbound_pop
from dialerd.phone import is_e164
from dialerd.rules.windows import next_allowed, zones_for_lead
from dialerd.store.api import PhoneLead, StoreApi

log = structlog.get_logger("dialerd")

#: the callback offer waits 3 s for its answer: past this, a lead the write
#: queue still owes is answered ``ok`` (it will be written)
ACK_WAIT_S = 2.0
#: leads shown on an inbound caller's screen pop
POP_LEADS = 10

Actions = list[dict[str, str | list[str]]]


class InboundCommands:
    def __init__(self, shell: Shell, send_actions: Callable[[Actions], None]) -> None:
        self.shell = shell
        self.send_actions = send_actions

    # ------------------------------------------------------------ fallback

    def fallback(self, c: cmd.InboundFallback) -> None:
        sh = self.shell
        about = {"call_id": c.call_id, "queue": c.queue, "reason": c.reason, "action": c.action}
        log.info("inbound.fallback", **about)
        try:
            *setvars, redirect = mapping.fallback_actions(c)
        except UnsafeValue as exc:
            # never sent: the dialplan's own maximum wait ends the call
            log.error("inbound.fallback_unsafe", error=str(exc), **about)
            return
        ami = sh.ami
        if ami is None:
            log.error("inbound.fallback_failed", error="AMI is not connected", **about)
            return
        # one connection, run in order by Asterisk: the sounds are set
        # before the Redirect moves the caller to where they are read
        self.send_actions(setvars)
        try:
            fut = ami.send(redirect)
        except AmiError as exc:
            log.error("inbound.fallback_failed", error=str(exc), **about)
            return
        sh.io_tasks.spawn(self._fallback_result(fut, about))

    async def _fallback_result(self, fut: asyncio.Future[Any], about: dict[str, Any]) -> None:
        ok, detail = await self.shell.action_result(fut)
        if not ok:
            # the caller is usually gone already (its hang-up records it);
            # if not, the dialplan's maximum wait ends the call
            log.warning("inbound.fallback_redirect_failed", detail=detail, **about)

    # ------------------------------------------------------------ callback

    def make_callback(self, c: cmd.MakeCallback) -> None:
        sh = self.shell
        about = {"call_id": c.call_id, "queue": c.queue, "campaign": c.campaign}
        answered = False
        timer: asyncio.TimerHandle | None = None

        def answer(ok: bool, why: str) -> None:
            nonlocal answered
            if timer is not None:
                timer.cancel()
            if answered:
                if not ok:
                    # told ok while the write was owed, then refused: a bug
                    log.error("inbound.callback_lost_after_ack", why=why, **about)
                return
            answered = True
            log.info("inbound.callback_answer", ok=ok, why=why, **about)
            if c.channel:
                try:
                    self.send_actions(mapping.callback_ack_actions(c.channel, ok))
                except UnsafeValue as exc:
                    log.error("inbound.callback_ack_unsafe", error=str(exc), **about)

        camp = sh.campaigns.get(c.campaign)
        if camp is None:
            answer(False, "campaign not running")
            return
        if not is_e164(c.phone):
            answer(False, "no number to call")
            return
        if sh.core.dnc.is_blocked(c.campaign, c.phone) is not None:
            answer(False, "number on a do-not-call list")
            return
        due = next_allowed(camp.compliance.schedule, zones_for_lead(c.phone), max(c.at, sh.clock()))
        if due is None:
            answer(False, "no calling window in sight")
            return
        fields = {"source": "inbound", "queue": c.queue, "call_id": c.call_id}

        async def book(s: StoreApi) -> int | None:
            return await s.callback_for_phone(c.campaign, c.phone, due, c.at, fields)

        def done(lead_id: int | None) -> None:
            if lead_id is None:
                answer(False, "the lead is dialing")
                return
            log.info("inbound.callback_booked", lead=lead_id, due_at=due, **about)
            answer(True, "written")

        def refused(exc: BaseException) -> None:
            answer(False, f"store refused: {describe(exc)}")

        sh.writer.submit(Write("callback_for_phone", book, about, done, rejected=refused))
        if not answered:
            timer = asyncio.get_running_loop().call_later(
                ACK_WAIT_S, answer, True, "owed to the store (written when it can)"
            )

    def dispose(self, c: cmd.DisposeInbound, submit_dnc: Callable[..., None]) -> None:
        sh = self.shell
        about = {"call_id": c.call_id, "code": c.code, "agent": c.agent_id}
        if c.dnc is not None and c.caller:
            campaign = None if c.dnc == "global" else c.campaign
            submit_dnc(c.caller, campaign, f"disposition:{c.code}", c.at, about)

        def written(ok: bool) -> None:
            if not ok:
                log.warning("inbound.disposition_no_row", **about)

        sh.writer.submit(
            Write(
                "dispose_inbound",
                lambda s: s.dispose_inbound(c.call_id, c.code, c.at),
                about,
                written,
            )
        )
        if c.callback_at is None or not is_e164(c.caller):
            return
        fields = {"source": "inbound", "queue": c.queue, "call_id": c.call_id}
        due = c.callback_at

        async def book(s: StoreApi) -> int | None:
            return await s.callback_for_phone(c.campaign, c.caller, due, c.at, fields)

        def booked(lead_id: int | None) -> None:
            log.info("inbound.disposition_callback", lead=lead_id, due_at=due, **about)

        sh.writer.submit(Write("callback_for_phone", book, about, booked))

    # ------------------------------------------------------------ pop, record

    def pop(self, c: cmd.InboundPop) -> None:
        if self.shell.mqtt is None:
            return
        self.shell.store_tasks.spawn(self._pop(c))

    async def _pop(self, c: cmd.InboundPop) -> None:
        sh = self.shell
        leads: list[PhoneLead] = []
        error: str | None = None
        if c.caller:
            try:
                leads = await sh.need_store().leads_for_phone(c.caller, POP_LEADS)
            except Exception as exc:
                # the pop goes without the leads: dialing does not need them
                error = describe(exc)
                log.warning("inbound.pop_leads_failed", call_id=c.call_id, error=error)
        if sh.mqtt is not None:
            publish_inbound_pop(sh.mqtt, c, leads, error)

    def record(self, c: cmd.RecordInbound) -> None:
        log.info(
            "inbound.ended",
            call_id=c.call_id,
            queue=c.queue,
            outcome=c.outcome.value,
            wait_s=c.wait_s,
            agent=c.agent_id,
            fallback=c.fallback,
            callback_campaign=c.callback_campaign,
        )
        self.shell.submit_inbound_record(c)
