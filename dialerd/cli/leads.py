"""``dialerd leads``: a supervisor's hands on a campaign's list, from the
import of a CSV to the export of its results, without the daemon running.

The store is shared with a running daemon, so every action here is one the
store makes safe against it: a lead in a live call is never reset or given a
callback, and the hopper's leads are skipped, not taken. Import and export
stream in pages so a list of millions keeps memory flat.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dialerd.campaign.loader import load_campaigns_dir
from dialerd.campaign.model import Campaign
from dialerd.cli.common import Exit, config_arg, console, err, in_store, with_settings
from dialerd.settings import Settings
from dialerd.store import store_session
from dialerd.store.api import StoreApi
from dialerd.store.importer import import_csv

LEAD_STATUSES = ("new", "retry", "dialing", "done")

#: files at least this big get a progress bar (when stderr is a terminal)
PROGRESS_MIN_BYTES = 1_000_000

_MAP_RESERVED = ("phone", "priority", "timezone")

EXPORT_COLUMNS = (
    "lead_id",
    "phone",
    "lead_status",
    "lead_attempts",
    "final_reason",
    "attempt_id",
    "attempt_state",
    "outcome",
    "started_at",
    "answered_at",
    "connected_at",
    "ended_at",
    "agent",
    "cause",
    "detail",
    "disposition",
)


def add_parser(subparsers: Any) -> None:
    leads = subparsers.add_parser("leads", help="manage leads")
    sub = leads.add_subparsers(dest="leads_command", metavar="ACTION", required=True)
    p = sub.add_parser("import", help="import a CSV file of leads into a campaign")
    p.add_argument("campaign", metavar="CAMPAIGN")
    p.add_argument("file", metavar="FILE.csv")
    p.add_argument(
        "--map",
        action="append",
        metavar="FIELD=COLUMN",
        help="take a lead field from another column: phone=Telephone, timezone=TZ, "
        "priority=Prio, or rename a custom field (repeatable)",
    )
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar on stderr (default: for files over 1 MB on a terminal)",
    )
    config_arg(p)
    p.set_defaults(func=cmd_leads_import)

    p = sub.add_parser("list", help="list a campaign's leads")
    p.add_argument("campaign", metavar="CAMPAIGN")
    p.add_argument("--status", action="append", choices=LEAD_STATUSES, help="(repeatable)")
    p.add_argument("--limit", type=int, default=100, help="at most N leads (default %(default)s)")
    p.add_argument("--json", action="store_true", help="JSON array instead of a table")
    config_arg(p)
    p.set_defaults(func=cmd_leads_list)

    p = sub.add_parser(
        "export", help="CSV of the campaign's results: one row per attempt, with the lead"
    )
    p.add_argument("campaign", metavar="CAMPAIGN")
    p.add_argument("file", metavar="FILE.csv", help="'-' for stdout")
    config_arg(p)
    p.set_defaults(func=cmd_leads_export)

    p = sub.add_parser("reset", help="list recycling: put finished leads back to new, attempts 0")
    p.add_argument("campaign", metavar="CAMPAIGN")
    p.add_argument(
        "--status",
        action="append",
        choices=("done", "retry"),
        help="statuses to reset (default done; repeatable); dialing leads are never reset",
    )
    p.add_argument(
        "--reason",
        action="append",
        metavar="FINAL_REASON",
        help="only leads finished for this reason, e.g. max_attempts_busy (repeatable)",
    )
    config_arg(p)
    p.set_defaults(func=cmd_leads_reset)

    p = sub.add_parser("callback", help="a customer-chosen callback for a lead")
    p.add_argument("lead_id", metavar="LEAD_ID", type=int)
    p.add_argument("--at", required=True, help="+90m, +2h, +1d or an ISO date-time")
    p.add_argument("--agent", help="only this agent takes it until the grace ends")
    p.add_argument("--grace", type=float, default=900.0, help="seconds (default %(default)s)")
    config_arg(p)
    p.set_defaults(func=cmd_leads_callback)

    p = sub.add_parser(
        "recycle", help="bring never-reached leads back after compliance.recycle_after_days"
    )
    p.add_argument("campaign", metavar="CAMPAIGN")
    config_arg(p)
    p.set_defaults(func=cmd_leads_recycle)


def find_campaign(settings: Settings, campaign: str) -> Campaign:
    """The campaign named on the command line; exit 1 naming the valid ones."""
    campaigns, errors = load_campaigns_dir(settings.campaigns_dir, settings.site())
    found: Campaign | None = campaigns.get(campaign)
    if found is None:
        known = ", ".join(sorted(campaigns)) or "none"
        where = settings.campaigns_dir
        raise Exit(
            1,
            *(str(e) for e in errors),
            f"unknown or invalid campaign {campaign!r} in {where} (valid: {known})",
        )
    return found


def _iso(t: float | None) -> str:
    if t is None:
        return ""
    from datetime import datetime

    return datetime.fromtimestamp(t).astimezone().isoformat(timespec="milliseconds")


# ---------------------------------------------------------------- import


def _parse_map(items: Sequence[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or ():
        field, sep, column = item.partition("=")
        if not sep or not field.strip() or not column.strip():
            raise Exit(2, f"--map {item!r}: expected FIELD=COLUMN, e.g. phone=Telephone")
        out[field.strip().lower() if field.strip().lower() in _MAP_RESERVED else field.strip()] = (
            column.strip()
        )
    return out


def _file_size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


async def _import(
    settings: Settings,
    campaign: str,
    csv_path: str,
    columns: dict[str, str] | None = None,
    show_progress: bool | None = None,
) -> int:
    found = find_campaign(settings, campaign)
    size = _file_size(csv_path)
    if show_progress is None:
        show_progress = size >= PROGRESS_MIN_BYTES and sys.stderr.isatty()
    async with store_session(settings) as store:
        try:
            if show_progress:
                from rich.console import Console
                from rich.progress import (
                    BarColumn,
                    DownloadColumn,
                    Progress,
                    TimeElapsedColumn,
                    TimeRemainingColumn,
                )

                with Progress(
                    "[progress.description]{task.description}",
                    BarColumn(),
                    DownloadColumn(),
                    TimeElapsedColumn(),
                    TimeRemainingColumn(),
                    console=Console(stderr=True),
                    transient=False,
                ) as bar:
                    task = bar.add_task(f"importing {Path(csv_path).name}", total=size or None)
                    report = await import_csv(
                        store,
                        found,
                        csv_path,
                        columns=columns,
                        progress=lambda done, total: bar.update(task, completed=done, total=total),
                    )
            else:
                report = await import_csv(store, found, csv_path, columns=columns)
        except OSError as exc:
            raise Exit(1, f"{csv_path}: cannot read: {exc.strerror or exc}") from None
    for row in report.errors:
        err(f"{csv_path}:{row.line}: {row.reason}")
    print(f"imported {report.imported}, duplicates {report.duplicates}, rejected {report.rejected}")
    # a re-run of the same file (every row a duplicate) is a success: its
    # leads are in the campaign; only a file with no usable row fails
    return 0 if report.imported or report.duplicates else 1


@with_settings
def cmd_leads_import(args: argparse.Namespace, settings: Settings) -> int:
    columns = _parse_map(getattr(args, "map", None))
    progress: bool | None = getattr(args, "progress", None)
    return asyncio.run(
        _import(settings, args.campaign, args.file, columns or None, show_progress=progress)
    )


# ---------------------------------------------------------------- list


def _lead_dict(lead: Any) -> dict[str, Any]:
    return {
        "id": lead.id,
        "campaign": lead.campaign,
        "phone": lead.phone,
        "status": lead.status.value,
        "attempts": lead.attempts,
        "next_due_at": lead.next_due_at,
        "priority": lead.priority,
        "timezone": lead.timezone,
        "last_outcome": lead.last_outcome,
        "final_reason": lead.final_reason,
        "fields": lead.fields,
    }


@with_settings
def cmd_leads_list(args: argparse.Namespace, settings: Settings) -> int:
    leads = in_store(
        settings, lambda store: store.query_leads(args.campaign, args.status or None, args.limit)
    )
    if args.json:
        print(json.dumps([_lead_dict(x) for x in leads], ensure_ascii=False))
        return 0
    from rich.table import Table

    table = Table(title=f"leads of {args.campaign}", title_justify="left")
    for col in ("id", "phone", "status", "attempts", "last outcome", "final reason", "due"):
        table.add_column(col)
    for x in leads:
        due = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(x.next_due_at))
        table.add_row(
            str(x.id),
            x.phone,
            x.status.value,
            str(x.attempts),
            x.last_outcome or "",
            x.final_reason or "",
            due if x.status.value in ("new", "retry") else "",
        )
    console().print(table)
    return 0


# ---------------------------------------------------------------- export


#: a spreadsheet runs a cell that starts with one of these as a formula
#: (OWASP "CSV injection"); such cells are written with a leading quote
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
#: leads per page: memory stays flat however big the campaign
EXPORT_PAGE = 2000


def neutralise(cell: object) -> object:
    """The cell as a spreadsheet shows it, never run: lead fields come from
    CRM exports and the API, so a field like ``=HYPERLINK(...)`` is data."""
    if isinstance(cell, str) and cell.startswith(_FORMULA_START):
        return "'" + cell
    return cell


async def _field_names(store: StoreApi, campaign: str) -> list[str]:
    """Every custom field of every lead, in first-seen order: a field that
    only later leads carry is still a column."""
    names: dict[str, None] = {}
    after = 0
    while leads := await store.query_leads(campaign, None, EXPORT_PAGE, after_id=after):
        after = leads[-1].id
        for x in leads:
            names.update(dict.fromkeys(x.fields))
    return list(names)


async def _export(store: StoreApi, campaign: str, out: Any) -> tuple[int, int]:
    """Two passes over pages of leads (the column names, then the rows), each
    page with its attempts. Returns (leads, rows)."""
    field_names = await _field_names(store, campaign)
    w = csv.writer(out, lineterminator="\n")
    w.writerow([*EXPORT_COLUMNS, *(neutralise(k) for k in field_names)])
    n_leads = n_rows = 0
    after = 0
    while leads := await store.query_leads(campaign, None, EXPORT_PAGE, after_id=after):
        after = leads[-1].id
        by_lead: dict[int, list[Any]] = {}
        for a in await store.attempts_of_leads([x.id for x in leads]):
            by_lead.setdefault(a.lead_id, []).append(a)
        for x in leads:
            n_leads += 1
            custom = [neutralise(x.fields.get(k, "")) for k in field_names]
            base = [x.id, x.phone, x.status.value, x.attempts, x.final_reason or ""]
            for a in by_lead.get(x.id, []) or [None]:
                n_rows += 1
                if a is None:
                    w.writerow([*base, *([""] * (len(EXPORT_COLUMNS) - len(base))), *custom])
                else:
                    w.writerow(
                        [
                            *base,
                            a.id,
                            a.state,
                            a.outcome or "",
                            _iso(a.started_at),
                            _iso(a.answered_at),
                            _iso(a.connected_at),
                            _iso(a.ended_at),
                            a.agent_id or "",
                            "" if a.cause is None else a.cause,
                            neutralise(a.detail),
                            a.disposition or "",
                            *custom,
                        ]
                    )
    return n_leads, n_rows


def _open_private(path: str) -> Any:
    """The export holds customers' numbers and CRM fields: readable by its
    owner only (0600), even when the file existed with a wider mode."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
    except OSError:
        os.close(fd)
        raise
    return open(fd, "w", newline="", encoding="utf-8")


@with_settings
def cmd_leads_export(args: argparse.Namespace, settings: Settings) -> int:
    try:
        out = sys.stdout if args.file == "-" else _open_private(args.file)
    except OSError as exc:
        raise Exit(1, f"{args.file}: cannot write: {exc.strerror or exc}") from None
    try:
        n_leads, n_rows = in_store(settings, lambda store: _export(store, args.campaign, out))
    finally:
        if out is not sys.stdout:
            out.close()
    err(f"exported {n_leads} leads, {n_rows} rows (one per attempt) to {args.file}")
    return 0


# ---------------------------------------------------------------- reset, callback, recycle


@with_settings
def cmd_leads_reset(args: argparse.Namespace, settings: Settings) -> int:
    from dialerd.store.api import StoreError

    status = args.status or ["done"]
    if "dialing" in status:
        raise Exit(2, "leads that are dialing cannot be reset (their call is live)")
    try:
        n, held = in_store(
            settings, lambda store: store.reset_leads(args.campaign, status, args.reason or None)
        )
    except StoreError as exc:
        raise Exit(2, str(exc)) from None
    print(f"reset {n} leads of {args.campaign} to new ({', '.join(status)})")
    if held:
        err(f"skipped {held} leads held by the running daemon's hopper")
    return 0


def _parse_when(text: str, now: float) -> float | None:
    """``+90m``, ``+2h``, ``+1d`` or an ISO date-time (with its offset, else
    local time, as ``report --from/--to`` read it)."""
    t = text.strip()
    if t.startswith("+") and t[-1:] in ("m", "h", "d") and t[1:-1].isdigit():
        return now + int(t[1:-1]) * {"m": 60, "h": 3600, "d": 86400}[t[-1]]
    from dialerd.report import parse_time

    try:
        return parse_time(t)
    except ValueError:
        return None


@with_settings
def cmd_leads_callback(args: argparse.Namespace, settings: Settings) -> int:
    """A callback the customer asked for: due at a time, before fresh leads."""
    at = _parse_when(args.at, time.time())
    if at is None:
        raise Exit(
            2, f"--at {args.at!r}: give +90m, +2h, +1d or an ISO time like 2026-05-04T14:30+01:00"
        )
    until = None if args.agent is None else at + args.grace
    if not in_store(
        settings, lambda store: store.set_callback(args.lead_id, at, args.agent, until)
    ):
        raise Exit(1, f"lead {args.lead_id}: unknown, or in a live call right now")
    who = f" for agent {args.agent}" if args.agent else ""
    print(f"lead {args.lead_id}: callback at {_iso(at)}{who}")
    return 0


@with_settings
def cmd_leads_recycle(args: argparse.Namespace, settings: Settings) -> int:
    """List recycling by the campaign's compliance.recycle_* rule."""
    camp = find_campaign(settings, args.campaign)
    comp = camp.compliance
    if comp.recycle_after_days is None:
        raise Exit(2, f"campaign {camp.name}: compliance.recycle_after_days is not set")
    now = time.time()
    before = now - comp.recycle_after_days * 86400
    n = in_store(
        settings, lambda store: store.recycle_leads(camp.name, comp.recycle_reasons, before, now)
    )
    print(f"recycled {n} leads of {camp.name} (finished over {comp.recycle_after_days} days ago)")
    return 0
