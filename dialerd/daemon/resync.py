"""After every AMI login: what is live in Asterisk right now.

ConfbridgeJoin and Hangup are only seen live; agents who logged in before
we connected, calls a killed run left behind and calls that ended while AMI
was down are found here instead, in one ``Resync`` the core applies
atomically. The snapshot is taken first and the store read after, so a
call cannot slip between the two unseen (``UnclaimedHangups`` covers the
calls that end in between).
"""

from __future__ import annotations

import structlog

from dialerd.asterisk import mapping
from dialerd.asterisk.ami import AmiError
from dialerd.core import events as ev
from dialerd.core.models import Lead
from dialerd.daemon.shell import Shell

log = structlog.get_logger("dialerd")


async def resync(shell: Shell) -> None:
    ami, store, core = shell.need_ami(), shell.need_store(), shell.core
    taken_at = shell.clock()
    try:
        resp = await ami.action({"Action": "CoreShowChannels"})
        stored = await store.open_attempts()
    except (AmiError, TimeoutError) as exc:
        log.warning("ami.resync_failed", error=str(exc))
        return
    msgs = resp if isinstance(resp, list) else [resp]
    open_ids = {oa.attempt_id for oa in stored}
    calls = mapping.live_calls(msgs, lambda uid: uid in open_ids or uid in core.calls)
    unknown = []
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
    agents = mapping.agents_in_rooms(msgs, taken_at)
    shell.put(ev.Resync(taken_at, tuple(calls), tuple(agents), tuple(unknown)))
    log.info(
        "ami.resync",
        agents_in_rooms=len(agents),
        live_calls=len(calls),
        open_attempts_of_earlier_runs=len(unknown),
    )
