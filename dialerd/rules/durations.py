"""Bounds for every duration a supervisor can write, and the retry step
that both a campaign's retry rules and a disposition's retry are made of.

An unbounded number is not a long delay but a crash waiting for a lead: a
401-digit ``delay_s`` passed validation and then raised OverflowError in the
retry rules after the call had left the core, so its outcome was never
recorded; ``1e17`` seconds broke every date shown. Nothing a dialer schedules
is sensibly more than a year away.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

#: the longest delay a retry, a disposition or a callback may ask for
MAX_DELAY_S = 366 * 86400
#: the longest list of per-attempt delays (attempts are capped at 100)
MAX_DELAY_STEPS = 100

DelaySeconds = Annotated[int, Field(ge=0, le=MAX_DELAY_S)]
DelayList = Annotated[list[DelaySeconds], Field(max_length=MAX_DELAY_STEPS)]


class RetryStep(BaseModel):
    """When to try a lead again: ``delay_s`` is one delay or a list by
    attempt number (the last entry repeats); ``max_attempts`` counts every
    attempt of the lead, whatever the outcome. Subclasses set the defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    delay_s: DelaySeconds | DelayList = 3600
    max_attempts: Annotated[int, Field(ge=1, le=100)] = 3

    def delay_for(self, attempt_number: int) -> int:
        """Delay after the ``attempt_number``-th attempt (1-based)."""
        if isinstance(self.delay_s, int):
            return self.delay_s
        if not self.delay_s:
            return 0
        return self.delay_s[min(max(attempt_number, 1), len(self.delay_s)) - 1]
