"""After every AMI login: what is live in Asterisk right now.

ConfbridgeJoin and Hangup are only seen live; agents who logged in before
we connected, calls a killed run left behind and calls that ended while AMI
was down are found here instead, in one ``Resync`` the core applies
atomically. The snapshot is taken first and the store read after, so a
call cannot slip between the two unseen (``UnclaimedHangups`` covers the
calls that end in between).

A store that fails the read does not lose the resync: the store is down
(no new dials meanwhile) and the whole snapshot is taken again after a
pause, until it succeeds (or AMI goes away: the next login starts anew).
"""

from __future__ import annotations

import asyncio

import structlog

from dialerd.asterisk import mapping
from dialerd.asterisk.ami import AmiError
from dialerd.core import events as ev
from dialerd.core.models import Lead
from dialerd.daemon.shell import Shell
from dialerd.daemon.writes import describe

log = structlog.get_logger("dialerd")

#: a resync whose store read failed is tried again after this, doubling
RETRY_MIN_S = 0.5
RETRY_MAX_S = 5.0


class _StoreFailed(Exception):
    pass


async def resync(shell: Shell) -> None:
    delay = RETRY_MIN_S
    while True:
        try:
            event = await _snapshot(shell)
        except (AmiError, TimeoutError) as exc:
            log.warning("ami.resync_failed", error=str(exc))
            return
        except _StoreFailed as exc:
            cause = exc.__cause__ or exc
            shell.writer.failed("resync", cause, lambda store: store.open_attempts())
            log.error("store.resync_failed", error=describe(cause), retry_in_s=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_S)
            continue
        shell.put(event)
        shell.writer.succeeded("resync", write=False)
        log.info(
            "ami.resync",
            agents_in_rooms=len(event.agents),
            live_calls=len(event.calls),
            open_attempts_of_earlier_runs=len(event.open_attempts),
        )
        return


async def _snapshot(shell: Shell) -> ev.Resync:
    ami, store, core = shell.need_ami(), shell.need_store(), shell.core
    taken_at = shell.clock()
    resp = await ami.action({"Action": "CoreShowChannels"})
    unknown = []
    try:
        stored = await store.open_attempts()
        open_ids = {oa.attempt_id for oa in stored}
        for oa in stored:
            if oa.attempt_id in core.calls:
                continue
            lead = await store.get_lead(oa.lead_id)
            if lead is None:
                continue
            unknown.append(
                ev.OpenAttempt(
                    oa.attempt_id,
                    oa.campaign,
                    Lead(
                        lead.id,
                        lead.campaign,
                        lead.phone,
                        lead.attempts,
                        lead.priority,
                        lead.timezone,
                        lead.fields,
                    ),
                    oa.started_at,
                )
            )
    except Exception as exc:
        raise _StoreFailed(describe(exc)) from exc
    msgs = resp if isinstance(resp, list) else [resp]
    calls = mapping.live_calls(
        msgs, lambda uid: uid in open_ids or uid in core.calls or uid in core.inbound
    )
    agents = mapping.agents_in_rooms(msgs, taken_at)
    return ev.Resync(taken_at, tuple(calls), tuple(agents), tuple(unknown))
