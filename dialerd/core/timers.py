"""What a ``Tick`` does: the core's deadlines, in a fixed order.

Why written down in one place: the order is part of the behaviour (and of
the simulator's reproducibility). Cause waits first, so a call the hangup
cause never classified frees its agent before wrap-ups end; wrap-ups next,
so an agent out of wrap can still take a waiting call inside its deadline;
preview timeouts; and last the waiting calls past their connect deadline,
which pass to the dialplan's fail-safe; then inbound callers past their
queue's maximum wait, who get its fallback. Last, the two watchdogs: a call
that never got its Originate's verdict, a lead request never answered.
Every campaign is then re-paced.
"""

from __future__ import annotations

from dialerd.core import agents, calls, hopper, inbound, preview
from dialerd.core.context import CoreContext


def tick(cx: CoreContext, now: float) -> None:
    calls.end_cause_waits(cx, now)
    agents.end_wraps(cx, now)
    preview.time_out(cx, now)
    calls.expire_waiting(cx, now)
    inbound.expire(cx, now)
    calls.end_unanswered_originates(cx, now)
    hopper.watch_loads(cx, now)
