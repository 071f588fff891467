"""A DialerCore driven by hand for unit tests: campaign c1 (agents 1001 and
1002, the sandbox campaign's settings with ``over`` on top), AMI up, every
command kept. Shared by the compliance-wiring and agent-key tests."""

from __future__ import annotations

from typing import Any

from dialerd.campaign.model import Campaign
from dialerd.core import commands as cmd
from dialerd.core import events as ev
from dialerd.core.engine import DialerCore
from dialerd.sandbox.scenario import sim_campaign


def camp(**over: Any) -> Campaign:
    return Campaign.model_validate({"name": "c1", **sim_campaign(["1001", "1002"], **over)})


class CoreWorld:
    def __init__(self, screen: bool = True, **over: Any) -> None:
        self.core = DialerCore(run_id="t", screen=screen)
        self.now = 1_780_000_000.0  # any hour: the sandbox campaign widens the window
        self.out: list[cmd.Command] = []
        self.do(ev.CampaignLoaded(self.now, camp(**over)))
        self.do(ev.AmiUp(self.now))

    def do(self, e: ev.Event) -> list[cmd.Command]:
        out = self.core.handle(e)
        self.out.extend(out)
        return out

    def of(self, kind: type) -> list[Any]:
        return [c for c in self.out if isinstance(c, kind)]
