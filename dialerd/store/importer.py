"""CSV lead import.

A lead list comes from a CRM export or a spreadsheet, so the importer
expects mess: every bad row is reported with its line number and skipped,
and the good rows still go in. Nothing reaches the store without passing
``dialerd.phone.normalize``, which is what keeps ``&Local/...`` or a CR/LF
in a "number" from ever reaching a channel string.

Rows go in batches of :data:`BATCH_ROWS`, each one ``executemany`` in one
transaction, and parsing of the next batch (in a worker thread) overlaps the
insert of the previous one (SQLite releases the GIL while it writes).

Where the time goes (bench/import_1m.py, a million London numbers): it was
phonenumbers (parse + validate + format, ~100 µs a row); ``normalize`` now
takes a checked shortcut for plain numbers (see ``dialerd.phone``), ~10 µs.
What remains is mostly SQLite: four indexes on ``leads``, one of them the
random-order (campaign, phone) key, so bigger transactions and a bigger page
cache (``Store.insert_leads``) halve it; CSV reading and the JSON of the
custom fields are a few µs a row.
"""

from __future__ import annotations

import _csv
import asyncio
import codecs
import csv
import json
import multiprocessing
import os
import time
import zoneinfo
from collections import deque
from collections.abc import AsyncGenerator, Callable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TextIO

from dialerd.campaign.model import Campaign
from dialerd.phone import PhoneError, normalize
from dialerd.store.api import LeadRow, StoreApi

#: rows a transaction (a batch of 25,000 holds the write lock for well under
#: a second; 10,000 made the import's index writes ~30% dearer)
BATCH_ROWS = 25_000
#: processes parsing rows on big files (None: one per CPU, at most 4; 1: no
#: pool, parsing in a thread). Off by default: on the 2-core build machine,
#: loaded, the pool did not beat the thread (bench/import_1m.py --workers N)
PARSE_WORKERS: int | None = 1
#: a file smaller than this is parsed in-process (a pool costs ~0.1 s to start)
POOL_MIN_BYTES = 4_000_000
#: progress callback: (bytes read so far, file size in bytes)
Progress = Callable[[int, int], None]
PRIORITY_MIN, PRIORITY_MAX = -1_000_000, 1_000_000
#: the longest line read (characters); a longer one is reported and skipped
#: without ever being held in memory whole
MAX_LINE_CHARS = 65_536
#: the most columns a header may have
MAX_COLUMNS = 256
#: column names with a meaning of their own; the rest go into ``fields``
_RESERVED = ("phone", "priority", "timezone")
#: ``json.dumps(x, ensure_ascii=False, separators=(",", ":"))`` without
#: building a new encoder for every row (which cost more than the encoding)
_fields_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


@dataclass(frozen=True, slots=True)
class RowError:
    #: 1-based line of the file where the record starts (the header is line 1)
    line: int
    reason: str


@dataclass(slots=True)
class ImportReport:
    imported: int = 0
    duplicates: int = 0
    errors: list[RowError] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        return len(self.errors)


#: bytes that are not UTF-8 become lone surrogates (the "surrogateescape"
#: handler), so the decoder, which reads ahead, never stops the file: the row
#: that holds them is found and reported by its own line. The handler counts
#: them so that clean files skip the per-row check.
_BAD_BYTES = [0]


_surrogateescape = codecs.lookup_error("surrogateescape")


def _escape_bad_bytes(exc: UnicodeError) -> tuple[str | bytes, int]:
    _BAD_BYTES[0] += 1
    return _surrogateescape(exc)


codecs.register_error("dialerd-csv", _escape_bad_bytes)


def _not_utf8(cells: list[str], names: list[str] | None = None) -> str | None:
    """Why the row is not UTF-8 text, or None."""
    for i, c in enumerate(cells):
        if c.isascii():
            continue
        try:
            c.encode("utf-8")
        except UnicodeEncodeError as exc:
            byte = ord(c[exc.start]) - 0xDC00
            where = f"column {names[i]!r}" if names and i < len(names) else f"value {i + 1}"
            return f"unreadable: byte 0x{byte:02x} in {where} is not UTF-8; save the file as UTF-8"
    return None


def _capped_lines(fh: TextIO, too_long: list[int]) -> Iterator[str]:
    """The file's lines for the csv reader, none longer than
    ``MAX_LINE_CHARS``: a longer line is read past in pieces, its number noted
    in ``too_long`` and replaced by a blank line (so line numbers hold)."""
    n = 0
    while True:
        line = fh.readline(MAX_LINE_CHARS + 1)
        if not line:
            return
        n += 1
        if len(line) > MAX_LINE_CHARS and line[-1] not in "\r\n":
            while True:
                rest = fh.readline(MAX_LINE_CHARS)
                if not rest or rest[-1] in "\r\n":
                    break
            too_long.append(n)
            yield "\n"
            continue
        yield line


@lru_cache(maxsize=1024)
def _valid_timezone(name: str) -> bool:
    # cached: a million-row file names the same few zones over and over
    try:
        zoneinfo.ZoneInfo(name)
    except (KeyError, ValueError, OSError):
        return False
    return True


@dataclass(frozen=True, slots=True)
class _Header:
    phone: int
    priority: int | None
    timezone: int | None
    #: (index, name) of the columns that go into ``fields``
    extra: tuple[tuple[int, str], ...]
    width: int


def _apply_columns(names: list[str], columns: Mapping[str, str]) -> list[str] | str:
    """``columns`` maps a lead field (``phone``, ``timezone``, ``priority`` or a
    custom field's name) to the file's column holding it; the header is
    renamed accordingly. Errors name the missing or clashing column."""
    out = list(names)
    lowered = [n.lower() for n in names]
    for target, source in columns.items():
        t, src = target.strip(), source.strip()
        if not t or not src:
            return f"bad column mapping {target!r}={source!r}"
        if src.lower() not in lowered:
            found = ", ".join(n for n in names if n) or "nothing"
            return f"--map {t}={src}: the header has no column {src!r} (found: {found})"
        out[lowered.index(src.lower())] = t
    seen: set[str] = set()
    for n in out:
        if n and n.lower() in seen:
            return f"column {n!r} appears twice once --map is applied; map or rename one"
        seen.add(n.lower())
    return out


def _parse_header(cells: list[str], columns: Mapping[str, str] | None = None) -> _Header | str:
    if len(cells) > MAX_COLUMNS:
        return f"the header has {len(cells)} columns; at most {MAX_COLUMNS}"
    bad = _not_utf8(cells)
    if bad is not None:
        return bad
    names = [c.strip() for c in cells]
    if columns:
        renamed = _apply_columns(names, columns)
        if isinstance(renamed, str):
            return renamed
        names = renamed
    lowered = [n.lower() for n in names]
    seen: set[str] = set()
    for n in lowered:
        if n and n in seen:
            return f"column {n!r} appears twice in the header"
        seen.add(n)
    if "phone" not in lowered:
        found = ", ".join(n for n in names if n) or "nothing"
        return f"the header has no 'phone' column (found: {found})"

    def index(name: str) -> int | None:
        return lowered.index(name) if name in lowered else None

    extra = tuple((i, n) for i, n in enumerate(names) if n and n.lower() not in _RESERVED)
    return _Header(lowered.index("phone"), index("priority"), index("timezone"), extra, len(names))


def _parse_row(cells: list[str], h: _Header, region: str) -> LeadRow | str:
    """A store row, or why the row is refused."""
    if len(cells) != h.width:
        return f"{len(cells)} values but the header has {h.width} columns"
    raw = cells[h.phone]
    if not raw.strip():
        return "phone is empty"
    try:
        phone = normalize(raw, region)
    except PhoneError as exc:
        return str(exc)
    priority = 0
    if h.priority is not None and cells[h.priority].strip():
        try:
            priority = int(cells[h.priority])
        except ValueError:
            return f"priority {cells[h.priority]!r} is not a whole number"
        if not PRIORITY_MIN <= priority <= PRIORITY_MAX:
            return f"priority {priority} is out of range"
    tz: str | None = None
    if h.timezone is not None and cells[h.timezone].strip():
        tz = cells[h.timezone].strip()
        if not _valid_timezone(tz):
            return f"timezone {tz!r} is not an IANA time zone name"
    fields = {name: cells[i] for i, name in h.extra}
    return (phone, priority, tz, _fields_json(fields))


def parse_workers() -> int:
    return max(1, PARSE_WORKERS if PARSE_WORKERS is not None else min(4, os.cpu_count() or 1))


class _CsvSource:
    """The open file, read a batch at a time in a worker thread (blocking
    reads stay off the event loop); row errors accumulate in ``errors``."""

    def __init__(
        self,
        fh: TextIO,
        reader: _csv.Reader,
        header: _Header,
        region: str,
        too_long: list[int],
        bad_bytes_at_open: int,
    ) -> None:
        self._fh = fh
        self._too_long = too_long
        self._bad_bytes_at_open = bad_bytes_at_open
        self._names = ["" for _ in range(header.width)]
        self._names[header.phone] = "phone"
        for i, name in header.extra:
            self._names[i] = name
        self.size = 0
        self._reader = reader
        self._header = header
        self._region = region
        self._last_line = reader.line_num
        self.errors: list[RowError] = []
        self.done = False

    @classmethod
    def open(
        cls, path: str | Path, region: str, columns: Mapping[str, str] | None = None
    ) -> _CsvSource | RowError:
        # -sig: drop an Excel BOM
        fh = open(path, encoding="utf-8-sig", errors="dialerd-csv", newline="")
        too_long: list[int] = []
        bad_bytes_at_open = _BAD_BYTES[0]
        reader = csv.reader(_capped_lines(fh, too_long))
        try:
            cells = next(reader, None)
        except (csv.Error, UnicodeDecodeError) as exc:
            fh.close()
            return RowError(1, f"unreadable header: {exc}")
        header = _parse_header(cells, columns) if cells else "the file is empty (no header line)"
        if too_long and too_long[0] == 1:
            header = f"the header line is longer than {MAX_LINE_CHARS} characters"
        if isinstance(header, str):
            fh.close()
            return RowError(1, header)
        src = cls(fh, reader, header, region, too_long, bad_bytes_at_open)
        src.size = os.fstat(fh.fileno()).st_size
        return src

    @property
    def position(self) -> int:
        """Bytes read so far (to the read-ahead chunk: good for a progress bar)."""
        try:
            return int(self._fh.buffer.tell())
        except (OSError, ValueError):
            return 0

    def close(self) -> None:
        self._fh.close()

    def _read_raw(self) -> tuple[list[tuple[int, list[str]]], RowError | None]:
        """Up to a batch of (line, cells), unparsed, and the read error that
        stopped the file, if one did."""
        raw: list[tuple[int, list[str]]] = []
        while len(raw) < BATCH_ROWS:
            try:
                cells = next(self._reader)
            except StopIteration:
                self.done = True
                break
            except (csv.Error, UnicodeDecodeError) as exc:
                self.done = True
                return raw, RowError(self._last_line + 1, f"unreadable: {exc}; import stopped")
            line, self._last_line = self._last_line + 1, self._reader.line_num
            while self._too_long:
                at = self._too_long.pop(0)
                self.errors.append(
                    RowError(at, f"line longer than {MAX_LINE_CHARS} characters; skipped")
                )
            if not cells or (len(cells) == 1 and not cells[0].strip()):
                continue  # blank line
            if _BAD_BYTES[0] != self._bad_bytes_at_open:
                bad = _not_utf8(cells, self._names)
                if bad is not None:
                    self.errors.append(RowError(line, bad))
                    continue
            raw.append((line, cells))
        return raw, None

    def next_raw(self) -> list[tuple[int, list[str]]]:
        """The next batch as (line, cells), unparsed (for the process pool)."""
        raw, stop = self._read_raw()
        if stop is not None:
            self.errors.append(stop)
        return raw

    @property
    def header(self) -> _Header:
        return self._header

    def next_batch(self) -> list[LeadRow]:
        """The next batch parsed here; errors stay in line order."""
        raw, stop = self._read_raw()
        batch: list[LeadRow] = []
        for line, cells in raw:
            parsed = _parse_row(cells, self._header, self._region)
            if isinstance(parsed, str):
                self.errors.append(RowError(line, parsed))
            else:
                batch.append(parsed)
        if stop is not None:
            self.errors.append(stop)
        return batch


def _parse_chunk(
    raw: list[tuple[int, list[str]]], h: _Header, region: str
) -> list[tuple[int, LeadRow | str]]:
    """In a pool process: the very same ``_parse_row`` (validation unchanged)."""
    return [(line, _parse_row(cells, h, region)) for line, cells in raw]


async def _pooled_batches(
    src: _CsvSource, region: str, workers: int
) -> AsyncGenerator[list[LeadRow], None]:
    """Batches parsed by ``workers`` processes; the next batches are read and
    parsing while the caller inserts this one (two batches in flight)."""
    loop = asyncio.get_running_loop()
    # spawn: no fork of a process holding an event loop, threads and SQLite
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
        inflight: deque[list[asyncio.Future[list[tuple[int, LeadRow | str]]]]] = deque()
        try:
            while not src.done or inflight:
                while not src.done and len(inflight) < 2:
                    raw = await asyncio.to_thread(src.next_raw)
                    step = max(1, -(-len(raw) // workers))
                    inflight.append(
                        [
                            loop.run_in_executor(
                                pool, _parse_chunk, raw[i : i + step], src.header, region
                            )
                            for i in range(0, len(raw), step)
                        ]
                    )
                if not inflight:
                    break
                batch: list[LeadRow] = []
                for part in await asyncio.gather(*inflight.popleft()):
                    for line, parsed in part:
                        if isinstance(parsed, str):
                            src.errors.append(RowError(line, parsed))
                        else:
                            batch.append(parsed)
                yield batch
        finally:
            for futs in inflight:
                for f in futs:
                    f.cancel()


async def _threaded_batches(src: _CsvSource) -> AsyncGenerator[list[LeadRow], None]:
    while not src.done:
        yield await asyncio.to_thread(src.next_batch)


async def import_csv(
    store: StoreApi,
    campaign: Campaign | str,
    path: str | Path,
    default_region: str | None = None,
    *,
    now: float | None = None,
    columns: Mapping[str, str] | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Import ``path`` into ``campaign``; leads are due at once (``now``).

    ``default_region`` applies to numbers without a country code; it falls
    back to the campaign's own when a :class:`Campaign` is given. Raises
    ``OSError`` if the file cannot be opened; everything else is reported.

    ``columns`` maps lead fields to the file's column names (``{"phone":
    "Telephone", "timezone": "TZ"}``); ``progress(bytes_read, size)`` is
    called after every batch.
    """
    name = campaign if isinstance(campaign, str) else campaign.name
    region = default_region or (None if isinstance(campaign, str) else campaign.default_region)
    if region is None:
        raise ValueError("default_region is needed when the campaign is given by name")
    due = time.time() if now is None else now
    report = ImportReport()
    src = await asyncio.to_thread(_CsvSource.open, path, region, columns)
    if isinstance(src, RowError):
        report.errors.append(src)
        return report
    pending: asyncio.Task[int] | None = None
    workers = parse_workers()
    batches = (
        _pooled_batches(src, region, workers)
        if workers > 1 and src.size >= POOL_MIN_BYTES
        else _threaded_batches(src)
    )
    try:
        await store.ensure_campaign(name)
        valid = 0
        async for batch in batches:
            if pending is not None:
                report.imported += await pending
            pending = asyncio.ensure_future(store.insert_leads(name, batch, due))
            valid += len(batch)
            if progress is not None:
                progress(src.size if src.done else src.position, src.size)
        if pending is not None:
            report.imported += await pending
            pending = None
    finally:
        if pending is not None and not pending.done():
            pending.cancel()
        await batches.aclose()  # the pool shuts down before the file closes
        src.close()
    report.duplicates = valid - report.imported
    report.errors = sorted(src.errors, key=lambda e: e.line)  # stable: a line's own order
    return report
