"""Build a pacing policy by name: the one place that knows every policy.

Kept out of ``policies`` so that the baselines there and ``predictive`` (which
reads ``PacingSnapshot`` from ``policies``) do not import each other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dialerd.pacing.policies import Policy, Progressive, Ratio, SoonFree, Vicidial
from dialerd.pacing.predictive import Predictive

if TYPE_CHECKING:
    from dialerd.campaign.model import Campaign


def make_policy(mode: str, campaign: Campaign | None = None) -> Policy:
    """The policy object for a campaign's ``dial_mode``.

    ``preview`` gets progressive's object: the core never asks it for a
    number (preview offers a lead to each ready agent instead), but status
    and the simulator still name a policy.
    """
    pc = campaign.pacing if campaign is not None else None
    if mode == "ratio":
        return Ratio()
    if mode == "vicidial":
        if pc is None:
            return Vicidial()
        return Vicidial(max_level=pc.vicidial_max_level, intensity=pc.vicidial_intensity)
    if mode == "soonfree":
        return SoonFree(pc.soonfree_probability if pc is not None else 0.97)
    if mode == "predictive":
        return Predictive.from_campaign(campaign)
    return Progressive()
