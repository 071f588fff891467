"""Bounds for every duration a supervisor can write.

An unbounded number is not a long delay but a crash waiting for a lead: a
401-digit ``delay_s`` passed validation and then raised OverflowError in the
retry rules after the call had left the core, so its outcome was never
recorded; ``1e17`` seconds broke every date shown. Nothing a dialer schedules
is sensibly more than a year away.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

#: the longest delay a retry, a disposition or a callback may ask for
MAX_DELAY_S = 366 * 86400
#: the longest list of per-attempt delays (attempts are capped at 100)
MAX_DELAY_STEPS = 100

DelaySeconds = Annotated[int, Field(ge=0, le=MAX_DELAY_S)]
DelayList = Annotated[list[DelaySeconds], Field(max_length=MAX_DELAY_STEPS)]
