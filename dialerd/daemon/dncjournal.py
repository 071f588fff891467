"""Do-not-call requests kept outside the store until the store has them.

The write queue (``writes``) keeps every write owed to the store in memory,
so a SIGKILL during a store outage would lose them. For most writes the
next start closes the gap (resync closes an open attempt, held leads are
released), but a customer's do-not-call request would be lost and the
customer dialed again. So a DNC request is also appended here, flushed and
fsynced, *before* it is queued; once the store has written it, a ``done``
line follows. The next start replays every request without its ``done``
line, ahead of any dial, and empties the file.

The file lives in the daemon's runtime directory (beside the control
socket: ``/run/dialerd`` under systemd, a RAM-backed tmpfs), not on the
store's disk: it survives a crash or a SIGKILL of the daemon and keeps
working while the store's disk is full; it does not survive a reboot of the
host (the README's "Store faults" says so). The phone number is in the file
(it must be, to be replayed): the directory is the daemon's own (0750).
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import structlog

log = structlog.get_logger("dialerd")


@dataclass(frozen=True, slots=True)
class DncRequest:
    """One request: ``campaign`` None is the global list."""

    id: str
    phone: str
    campaign: str | None
    source: str
    at: float


class DncJournal:
    """Append-only JSON lines: ``{"add": {...}}`` then ``{"done": id}``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _append(self, obj: dict[str, object]) -> None:
        line = json.dumps(obj, separators=(",", ":")) + "\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    def add(self, phone: str, campaign: str | None, source: str, at: float) -> DncRequest:
        """Record a request before anything else happens to it. Raises
        ``OSError`` when it cannot (the caller logs it and goes on: the
        request is still queued for the store)."""
        req = DncRequest(uuid.uuid4().hex, phone, campaign, source, at)
        self._append(
            {
                "add": {
                    "id": req.id,
                    "phone": phone,
                    "campaign": campaign,
                    "source": source,
                    "at": at,
                }
            }
        )
        return req

    def done(self, req: DncRequest) -> None:
        """The store has ``req``: it need not be replayed."""
        try:
            self._append({"done": req.id})
        except OSError as exc:  # replaying it again is harmless (idempotent)
            log.warning("dnc_journal.done_not_written", id=req.id, error=str(exc))

    def pending(self) -> list[DncRequest]:
        """Requests without a ``done`` line, in the order made. A torn last
        line (the daemon killed mid-write) is skipped."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        adds: dict[str, DncRequest] = {}
        for line in text.splitlines():
            try:
                obj = json.loads(line)
                if "add" in obj:
                    a = obj["add"]
                    adds[a["id"]] = DncRequest(
                        str(a["id"]),
                        str(a["phone"]),
                        None if a["campaign"] is None else str(a["campaign"]),
                        str(a["source"]),
                        float(a["at"]),
                    )
                elif "done" in obj:
                    adds.pop(str(obj["done"]), None)
            except (ValueError, KeyError, TypeError):
                log.warning("dnc_journal.bad_line", path=str(self.path))
        return list(adds.values())

    def clear(self) -> None:
        """Every request is in the store: start an empty journal."""
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
