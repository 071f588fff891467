"""The inbound queue files, loaded at start and again on SIGHUP, after the
campaigns (a queue is checked against them: its agents, its campaigns, the
campaign its callbacks go to).

As with campaigns, a broken file never stops the others: its errors are
logged with file, line and field, and on a reload a queue whose file no
longer loads keeps its previous version (unless a DID it had now belongs
to another queue that loaded: a number reaches one queue). The core hears
the whole set (``QueuesLoaded``) every time, since who answers a queue
also moves with the campaigns. Callers already waiting are never touched.
"""

from __future__ import annotations

from pathlib import Path

import structlog

from dialerd.campaign.queue_loader import describe, load_queues_dir
from dialerd.core import events as ev
from dialerd.daemon.shell import Shell

log = structlog.get_logger("dialerd")


class QueueFiles:
    def __init__(self, shell: Shell) -> None:
        self.shell = shell
        #: the file each running queue came from
        self._sources: dict[str, Path] = {}
        #: the core was told of queues once: every later load tells it
        #: again, even of none (so a removed last queue takes no caller)
        self._told = False

    def load(self, keep_broken: bool = False) -> None:
        """Read ``queues_dir`` against the running campaigns; tell the core."""
        sh = self.shell
        found = load_queues_dir(Path(sh.settings.queues_dir), sh.campaigns)
        broken: set[Path] = set()
        for e in found.errors:
            log.error("queue.rejected", error=describe(e, "error"))
            broken.add(Path(e.file).resolve())
        for w in found.warnings:
            log.warning("queue.warning", warning=describe(w, "warning"))
        queues = dict(found.queues)
        sources = dict(found.sources)
        if keep_broken:
            taken = {d for q in queues.values() if q.enabled for d in q.dids}
            for name, old in sh.queues.items():
                src = self._sources.get(name)
                if name in queues or src is None or src.resolve() not in broken:
                    continue
                if old.enabled and taken.intersection(old.dids):
                    log.error(
                        "queue.dropped",
                        queue=name,
                        why="its file is broken and a DID of its old version is taken now",
                    )
                    continue
                log.warning("queue.kept", queue=name, file=str(src))
                queues[name] = old
                sources[name] = src
                if old.enabled:
                    taken.update(old.dids)
        sh.queues = queues
        sh.did_queues = {d: q.name for q in queues.values() if q.enabled for d in q.dids}
        self._sources = sources
        if queues or self._told:
            self._told = True
            sh.put(ev.QueuesLoaded(sh.clock(), tuple(queues[n] for n in sorted(queues))))
        for name in sorted(queues):
            q = queues[name]
            log.info(
                "queue.loaded",
                queue=name,
                enabled=q.enabled,
                dids=len(q.dids),
                sl=f"{q.service_level.percent:g}%/{q.service_level.within_s}s",
            )
