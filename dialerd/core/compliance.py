"""The compliance lists the screening reads, kept in step by the shell.

Why in the core: the last check before each Originate
(:func:`dialerd.core.hopper.may_dial`) must see the DNC list and the
72-hour abandon lock as of this event, not as of the last hopper load; the
shell sends the changes (``DncUpdated``) and, at start, the outcomes of the
last 30 days (``HistoryLoaded``) so that a restart forgets neither.
"""

from __future__ import annotations

from dialerd.core import events as ev
from dialerd.core.context import CoreContext
from dialerd.core.models import Outcome
from dialerd.rules.dnc import DncList


def dnc_updated(cx: CoreContext, e: ev.DncUpdated) -> None:
    if e.replace:
        cx.dnc = DncList()
    for campaign, phone, source in e.added:
        cx.dnc.add(phone, campaign, source)
    for campaign, phone in e.removed:
        cx.dnc.remove(phone, campaign)


def history_loaded(cx: CoreContext, e: ev.HistoryLoaded) -> None:
    for campaign, phone, outcome, at in e.outcomes:
        try:
            o = Outcome(outcome)
        except ValueError:
            continue
        run = cx.campaigns.get(campaign)
        if run is not None:
            run.abandons.record(o, at)
        if o.abandon:
            cx.lock.abandoned(phone, at)
    cx.dirty.update(cx.campaigns)
