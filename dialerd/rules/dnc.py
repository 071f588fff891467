"""Do-not-call lists: a global list and one per campaign. Pure: no I/O.

Numbers are kept in E.164 only (the form leads are stored in, see
:mod:`dialerd.phone`), so a check is one set lookup. The shell loads the
store's DNC table into a :class:`DncList` at start and keeps it in step with
every addition (import, disposition, opt-out key press); the hopper checks
when leads enter it and the core checks again just before the Originate.

:func:`parse_dnc` reads a DNC file's text: either one number per line (blank
lines and ``#`` comments skipped) or a CSV whose header has a ``phone``
column. Bad lines are reported with their 1-based line number, as the lead
importer does, and the good ones are kept.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from dialerd.phone import PhoneError, is_e164, normalize

#: reason codes :meth:`DncList.is_blocked` returns (prefixes; the source follows)
GLOBAL = "dnc_global"
CAMPAIGN = "dnc_campaign"


class DncList:
    """The global list plus per-campaign lists, each number -> its source
    (``import``, ``disposition:dnc``, ``optout``, ...)."""

    def __init__(self) -> None:
        self._global: dict[str, str] = {}
        self._campaigns: dict[str, dict[str, str]] = {}

    def add(self, e164: str, campaign: str | None = None, source: str = "manual") -> bool:
        """Add a number (E.164) to a campaign's list, or the global one when
        ``campaign`` is None. True when it was not there yet."""
        if not is_e164(e164):
            raise ValueError(f"{e164!r} is not E.164; normalise it first")
        target = self._global if campaign is None else self._campaigns.setdefault(campaign, {})
        if e164 in target:
            return False
        target[e164] = source
        return True

    def add_many(
        self, numbers: Iterable[str], campaign: str | None = None, source: str = "import"
    ) -> int:
        """Add E.164 numbers; returns how many were new."""
        return sum(self.add(n, campaign, source) for n in numbers)

    def remove(self, e164: str, campaign: str | None = None) -> bool:
        target = self._global if campaign is None else self._campaigns.get(campaign, {})
        return target.pop(e164, None) is not None

    def is_blocked(self, campaign: str, e164: str) -> str | None:
        """None when the number may be called for ``campaign``; else the
        reason, e.g. ``dnc_global:import`` or ``dnc_campaign:optout``."""
        src = self._global.get(e164)
        if src is not None:
            return f"{GLOBAL}:{src}"
        lst = self._campaigns.get(campaign)
        if lst is not None:
            src = lst.get(e164)
            if src is not None:
                return f"{CAMPAIGN}:{src}"
        return None

    def numbers(self, campaign: str | None = None) -> frozenset[str]:
        """The numbers of one list (the global one for None)."""
        target = self._global if campaign is None else self._campaigns.get(campaign, {})
        return frozenset(target)

    def __len__(self) -> int:
        return len(self._global) + sum(len(v) for v in self._campaigns.values())


@dataclass(frozen=True, slots=True)
class LineError:
    #: 1-based line of the file (a CSV header is line 1)
    line: int
    reason: str


@dataclass(slots=True)
class DncParse:
    #: distinct E.164 numbers, in file order
    numbers: list[str] = field(default_factory=list)
    duplicates: int = 0
    errors: list[LineError] = field(default_factory=list)


def _lines(text: str | Iterable[str]) -> Iterator[str]:
    if isinstance(text, str):
        yield from text.splitlines()
    else:
        for line in text:
            yield line.rstrip("\r\n")


def parse_dnc(text: str | Iterable[str], region: str) -> DncParse:
    """Parse a DNC file's content (a str or its lines).

    The format is decided by the first non-blank, non-comment line: when its
    CSV cells include ``phone`` (any case) it is a CSV header; otherwise every
    line is one number. ``region`` applies to numbers without a country code.
    """
    out = DncParse()
    seen: set[str] = set()

    def take(raw: str, line: int) -> None:
        try:
            e164 = normalize(raw, region)
        except PhoneError as exc:
            out.errors.append(LineError(line, str(exc)))
            return
        if e164 in seen:
            out.duplicates += 1
            return
        seen.add(e164)
        out.numbers.append(e164)

    lines = list(_lines(text))
    if lines and lines[0].startswith("\ufeff"):
        lines[0] = lines[0][1:]  # an Excel BOM
    first = next(
        (i for i, ln in enumerate(lines) if ln.strip() and not ln.lstrip().startswith("#")), None
    )
    if first is None:
        return out
    try:
        header = next(csv.reader([lines[first]]))
    except csv.Error:
        header = []
    lowered = [c.strip().lower() for c in header]
    if "phone" not in lowered:
        for i, ln in enumerate(lines, start=1):
            s = ln.strip()
            if s and not s.startswith("#"):
                take(s, i)
        return out
    col = lowered.index("phone")
    reader = csv.reader(lines[first + 1 :])
    base = first + 1  # lines consumed before the reader's first line
    last = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            out.errors.append(LineError(base + last + 1, f"unreadable: {exc}; parsing stopped"))
            break
        line, last = base + last + 1, reader.line_num
        if not cells or all(not c.strip() for c in cells):
            continue
        if col >= len(cells) or not cells[col].strip():
            out.errors.append(LineError(line, "phone is empty"))
            continue
        take(cells[col], line)
    return out
