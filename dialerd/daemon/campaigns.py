"""The campaign files, loaded at start and again on SIGHUP.

A reload must never stop a campaign because someone saved a broken file:
a campaign whose file no longer parses keeps its previous version running
(and the error is logged), while a campaign that parses but breaks a
compliance rule is refused outright, since dialing it would be unlawful.
Live calls are never touched either way; the core applies the changes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import structlog

from dialerd.campaign.lint import check_campaign
from dialerd.campaign.loader import load_campaigns_with_sources
from dialerd.core import events as ev
from dialerd.daemon.shell import Shell
from dialerd.daemon.writes import Write
from dialerd.store.api import StoreApi

log = structlog.get_logger("dialerd")


class CampaignFiles:
    def __init__(self, shell: Shell) -> None:
        self.shell = shell
        #: the file each running campaign came from
        self._sources: dict[str, Path] = {}

    def load(self, keep_broken: bool = False) -> None:
        """Read ``campaigns_dir`` and tell the core what changed
        (``CampaignLoaded`` / ``CampaignRemoved``)."""
        sh = self.shell
        found, files, errors = load_campaigns_with_sources(
            Path(sh.settings.campaigns_dir), sh.settings.site()
        )
        broken_files = set()
        for e in errors:
            log.error("campaign.rejected", error=str(e))
            broken_files.add(Path(e.file).resolve())
        if keep_broken:
            # a campaign whose file is now broken keeps its previous version
            for name, old in sh.campaigns.items():
                src = self._sources.get(name)
                if name not in found and src is not None and src.resolve() in broken_files:
                    found[name] = old
        now = sh.clock()
        for name, c in list(found.items()):
            bad = [f for f in check_campaign(c) if f.level == "error"]
            if bad:
                # a campaign breaking a compliance rule never dials
                for f in bad:
                    log.error("campaign.refused", campaign=name, field=f.field, error=f.message)
                del found[name]
        for name in set(sh.campaigns) - set(found):
            sh.put(ev.CampaignRemoved(now, name))
        for name, c in found.items():
            if sh.campaigns.get(name) != c:
                sh.writer.submit(Write("ensure_campaign", _ensure(c.name), {"campaign": c.name}))
                sh.put(ev.CampaignLoaded(now, c))
        sh.campaigns = found
        sources = {n: p for n, p in files.items() if n in found}
        for name in found:
            if name not in sources and name in self._sources:
                sources[name] = self._sources[name]  # kept from a now-broken file
        self._sources = sources


def _ensure(name: str) -> Callable[[StoreApi], Awaitable[None]]:
    async def run(store: StoreApi) -> None:
        await store.ensure_campaign(name)

    return run
