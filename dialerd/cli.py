"""The ``dialerd`` command.

One function per subcommand, registered in :data:`COMMANDS`; each returns
the exit code, so ``main`` is testable without a subprocess. Diagnostics go
to stderr, results to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from dialerd.agents import load_agents_file
from dialerd.campaign.lint import check_campaign
from dialerd.campaign.loader import ConfigError, ConfigErrors, load_campaigns_dir
from dialerd.campaign.model import Campaign
from dialerd.settings import Settings, load_settings
from dialerd.store.db import Store
from dialerd.store.importer import import_csv

DEFAULT_CONFIG = "/etc/dialerd/dialerd.yaml"

Handler = Callable[[argparse.Namespace], int]


def _default_config() -> str:
    return os.environ.get("DIALERD_CONFIG") or DEFAULT_CONFIG


def _err(line: str) -> None:
    print(line, file=sys.stderr)


def _load_settings(path: str) -> Settings | None:
    try:
        return load_settings(path)
    except ConfigError as exc:
        for e in exc.flatten():
            _err(str(e))
        return None


# ---------------------------------------------------------------- check-config


def cmd_check_config(args: argparse.Namespace) -> int:
    settings = _load_settings(args.config)
    if settings is None:
        return 1
    campaigns, errors = load_campaigns_dir(settings.campaigns_dir)
    for e in errors:
        _err(str(e))
    print(
        f"{args.config}: OK (AMI {settings.ami.username}@{settings.ami.host}:{settings.ami.port},"
        f" store {settings.store.path})"
    )
    failed = bool(errors)
    if settings.agents_file is not None:
        try:
            agents = load_agents_file(settings.agents_file)
        except (ConfigError, ConfigErrors, OSError) as exc:
            _err(str(exc))
            failed = True
        else:
            print(f"{settings.agents_file}: OK ({len(agents.agents)} agents with PINs)")
            listed = {a for c in campaigns.values() for a in c.agents}
            for a in sorted(listed - set(agents.agents)):
                _err(f"{settings.agents_file}: warning: agent {a} is in a campaign but has no PIN")
    for c in sorted(campaigns.values(), key=lambda c: c.name):
        state = "enabled" if c.enabled else "disabled"
        findings = check_campaign(c)
        bad = [f for f in findings if f.level == "error"]
        for f in findings:
            _err(f"campaign {c.name}: {f.level}: {f.field}: {f.message}")
        if bad:
            failed = True
            print(f"campaign {c.name}: REFUSED ({len(bad)} compliance error(s); not dialed)")
            continue
        print(
            f"campaign {c.name}: OK ({state}, {c.dial_mode.value}, {len(c.agents)} agents,"
            f" trunk {c.trunk})"
        )
    if not campaigns and not errors:
        _err(f"{settings.campaigns_dir}: warning: no campaign files (*.yaml, *.yml)")
    return 1 if failed else 0


# ---------------------------------------------------------------- leads import


def _find_campaign(settings: Settings, campaign: str) -> Campaign | None:
    campaigns, errors = load_campaigns_dir(settings.campaigns_dir)
    found: Campaign | None = campaigns.get(campaign)
    if found is None:
        for e in errors:
            _err(str(e))
        known = ", ".join(sorted(campaigns)) or "none"
        _err(
            f"unknown or invalid campaign {campaign!r} in {settings.campaigns_dir} (valid: {known})"
        )
    return found


#: files at least this big get a progress bar (when stderr is a terminal)
PROGRESS_MIN_BYTES = 1_000_000


def _parse_map(items: Sequence[str] | None) -> dict[str, str] | str:
    out: dict[str, str] = {}
    for item in items or ():
        field, sep, column = item.partition("=")
        if not sep or not field.strip() or not column.strip():
            return f"--map {item!r}: expected FIELD=COLUMN, e.g. phone=Telephone"
        out[field.strip().lower() if field.strip().lower() in _MAP_RESERVED else field.strip()] = (
            column.strip()
        )
    return out


_MAP_RESERVED = ("phone", "priority", "timezone")


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
    found = _find_campaign(settings, campaign)
    if found is None:
        return 1
    size = _file_size(csv_path)
    if show_progress is None:
        show_progress = size >= PROGRESS_MIN_BYTES and sys.stderr.isatty()
    store = await Store.open(settings.store.path)
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
        _err(f"{csv_path}: cannot read: {exc.strerror or exc}")
        return 1
    finally:
        await store.close()
    for row in report.errors:
        _err(f"{csv_path}:{row.line}: {row.reason}")
    print(f"imported {report.imported}, duplicates {report.duplicates}, rejected {report.rejected}")
    # a re-run of the same file (every row a duplicate) is a success: its
    # leads are in the campaign; only a file with no usable row fails
    return 0 if report.imported or report.duplicates else 1


def cmd_leads_import(args: argparse.Namespace) -> int:
    settings = _load_settings(args.config)
    if settings is None:
        return 1
    columns = _parse_map(getattr(args, "map", None))
    if isinstance(columns, str):
        _err(columns)
        return 2
    progress: bool | None = getattr(args, "progress", None)
    return asyncio.run(
        _import(settings, args.campaign, args.file, columns or None, show_progress=progress)
    )


# ---------------------------------------------------------------- leads list/export/reset

LEAD_STATUSES = ("new", "retry", "dialing", "done")


async def _with_store(settings: Settings, fn: Callable[[Store], Any]) -> Any:
    store = await Store.open(settings.store.path)
    try:
        return await fn(store)
    finally:
        await store.close()


def _console() -> Any:
    """Rich console on stdout; not a terminal (a pipe, a file): wide enough
    that no column is wrapped or cut."""
    from rich.console import Console

    return Console() if sys.stdout.isatty() else Console(width=240)


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


def cmd_leads_list(args: argparse.Namespace) -> int:
    settings = _load_settings(args.config)
    if settings is None:
        return 1

    async def q(store: Store) -> list[Any]:
        return await store.query_leads(args.campaign, args.status or None, args.limit)

    leads = asyncio.run(_with_store(settings, q))
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
    _console().print(table)
    return 0


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


def _iso(t: float | None) -> str:
    if t is None:
        return ""
    from datetime import datetime

    return datetime.fromtimestamp(t).astimezone().isoformat(timespec="milliseconds")


async def _export(store: Store, campaign: str, out: Any) -> tuple[int, int]:
    """Pages of 2000 leads, then their attempts: memory stays flat however
    big the campaign. Returns (leads, rows)."""
    w: Any = None
    field_names: list[str] = []
    n_leads = n_rows = 0
    after = 0
    while True:
        leads = await store.query_leads(campaign, None, 2000, after_id=after)
        if not leads:
            break
        after = leads[-1].id
        if w is None:
            # custom fields are per lead; the first page names the columns
            for x in leads:
                for k in x.fields:
                    if k not in field_names:
                        field_names.append(k)
            w = csv.writer(out, lineterminator="\n")
            w.writerow([*EXPORT_COLUMNS, *field_names])
        by_lead: dict[int, list[Any]] = {}
        for a in await store.attempts_of_leads([x.id for x in leads]):
            by_lead.setdefault(a.lead_id, []).append(a)
        for x in leads:
            n_leads += 1
            custom = [x.fields.get(k, "") for k in field_names]
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
                            a.detail,
                            a.disposition or "",
                            *custom,
                        ]
                    )
    if w is None:
        csv.writer(out, lineterminator="\n").writerow(list(EXPORT_COLUMNS))
    return n_leads, n_rows


def cmd_leads_export(args: argparse.Namespace) -> int:
    settings = _load_settings(args.config)
    if settings is None:
        return 1
    try:
        out = sys.stdout if args.file == "-" else open(args.file, "w", newline="", encoding="utf-8")
    except OSError as exc:
        _err(f"{args.file}: cannot write: {exc.strerror or exc}")
        return 1
    try:
        n_leads, n_rows = asyncio.run(
            _with_store(settings, lambda st: _export(st, args.campaign, out))
        )
    finally:
        if out is not sys.stdout:
            out.close()
    _err(f"exported {n_leads} leads, {n_rows} rows (one per attempt) to {args.file}")
    return 0


def cmd_leads_reset(args: argparse.Namespace) -> int:
    from dialerd.store.db import StoreError

    settings = _load_settings(args.config)
    if settings is None:
        return 1
    status = args.status or ["done"]
    if "dialing" in status:
        _err("leads that are dialing cannot be reset (their call is live)")
        return 2

    async def q(store: Store) -> tuple[int, int]:
        return await store.reset_leads(args.campaign, status, args.reason or None)

    try:
        n, held = asyncio.run(_with_store(settings, q))
    except StoreError as exc:
        _err(str(exc))
        return 2
    print(f"reset {n} leads of {args.campaign} to new ({', '.join(status)})")
    if held:
        _err(f"skipped {held} leads held by the running daemon's hopper")
    return 0


# ---------------------------------------------------------------- compliance


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


def cmd_leads_callback(args: argparse.Namespace) -> int:
    """A callback the customer asked for: due at a time, before fresh leads."""
    settings = _load_settings(args.config)
    if settings is None:
        return 1
    now = time.time()
    at = _parse_when(args.at, now)
    if at is None:
        _err(f"--at {args.at!r}: give +90m, +2h, +1d or an ISO time like 2026-05-04T14:30+01:00")
        return 2
    until = None if args.agent is None else at + args.grace

    async def q(store: Store) -> bool:
        return await store.set_callback(args.lead_id, at, args.agent, until)

    if not asyncio.run(_with_store(settings, q)):
        _err(f"lead {args.lead_id}: unknown, or in a live call right now")
        return 1
    who = f" for agent {args.agent}" if args.agent else ""
    print(f"lead {args.lead_id}: callback at {_iso(at)}{who}")
    return 0


def cmd_leads_recycle(args: argparse.Namespace) -> int:
    """List recycling by the campaign's compliance.recycle_* rule."""
    settings = _load_settings(args.config)
    if settings is None:
        return 1
    camp = _find_campaign(settings, args.campaign)
    if camp is None:
        return 1
    comp = camp.compliance
    if comp.recycle_after_days is None:
        _err(f"campaign {camp.name}: compliance.recycle_after_days is not set")
        return 2
    now = time.time()
    before = now - comp.recycle_after_days * 86400

    async def q(store: Store) -> int:
        return await store.recycle_leads(camp.name, comp.recycle_reasons, before, now)

    n = asyncio.run(_with_store(settings, q))
    print(f"recycled {n} leads of {camp.name} (finished over {comp.recycle_after_days} days ago)")
    return 0


def _dnc_numbers(args: argparse.Namespace) -> list[str] | None:
    from dialerd.phone import PhoneError, normalize

    region = args.region
    out = []
    for raw in args.numbers:
        try:
            out.append(normalize(raw, region))
        except PhoneError as exc:
            _err(f"{raw}: {exc}")
            return None
    return out


def cmd_dnc(args: argparse.Namespace) -> int:
    """``dnc import FILE`` / ``dnc add NUMBER...`` / ``dnc remove NUMBER...``:
    the global list, or a campaign's with ``--campaign``. A running daemon
    picks changes up within 5 s."""
    from dialerd.rules.dnc import parse_dnc

    settings = _load_settings(args.config)
    if settings is None:
        return 1
    if args.dnc_command == "import":
        try:
            text = Path(args.file).read_text(encoding="utf-8-sig")
        except OSError as exc:
            _err(f"{args.file}: {exc.strerror}")
            return 1
        parsed = parse_dnc(text, args.region)
        for e in parsed.errors:
            _err(f"{args.file}:{e.line}: {e.reason}")
        numbers = parsed.numbers
        source = "import"
    else:
        got = _dnc_numbers(args)
        if got is None:
            return 1
        numbers, source = got, "manual"

    async def q(store: Store) -> int:
        if args.dnc_command == "remove":
            return await store.dnc_remove(numbers, args.campaign)
        return await store.dnc_add(numbers, args.campaign, source)

    n = asyncio.run(_with_store(settings, q))
    scope = f"campaign {args.campaign}" if args.campaign else "the global list"
    verb = "removed from" if args.dnc_command == "remove" else "added to"
    print(f"{n} numbers {verb} {scope}")
    return 0


# ---------------------------------------------------------------- control socket


def _socket_path(args: argparse.Namespace) -> str | None:
    if getattr(args, "socket", None):
        return str(args.socket)
    settings = _load_settings(args.config)
    if settings is None:
        return None
    from dialerd.control import DEFAULT_SOCKET

    return str(getattr(settings, "control_socket", None) or DEFAULT_SOCKET)


def _request(path: str, obj: dict[str, Any]) -> dict[str, Any] | None:
    from dialerd.control import ControlError, control_request

    try:
        return control_request(path, obj)
    except ControlError as exc:
        _err(str(exc))
        return None


def _fmt_s(s: float) -> str:
    s = int(s)
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def _pct(x: Any) -> str:
    return "-" if x is None else f"{100 * float(x):.1f}%"


def render_status(st: dict[str, Any]) -> Any:
    """The rich view of one ``status`` reply."""
    from rich.console import Group
    from rich.table import Table

    head = "AMI up" if st.get("ami_up") else "[red]AMI DOWN[/red]"
    if st.get("draining"):
        head += "  [yellow]draining[/yellow]"
    camps = Table(title=f"dialerd  {head}", title_justify="left")
    for col in (
        "campaign",
        "state",
        "mode",
        "level",
        "lines",
        "ready/talk/wrap/paused",
        "dials",
        "answered",
        "abandoned",
        "abandon",
        "30d",
        "24h",
    ):
        camps.add_column(col, justify="left" if col in ("campaign", "state") else "right")
    for c in st.get("campaigns", []):
        ag = c.get("agents", {})
        state = c.get("dialing_blocked_by") or ("dialing" if c.get("enabled") else "disabled")
        win = c.get("abandon_windows") or {}
        camps.add_row(
            str(c.get("campaign")),
            str(state),
            str(c.get("dial_mode")),
            f"{c.get('dial_level', 0):.2f}/{c.get('max_dial_level') or '-'}",
            f"{c.get('lines_in_use', 0)}/{c.get('max_lines', 0)}",
            f"{ag.get('ready', 0)}/{ag.get('talking', 0)}/{ag.get('wrap', 0)}/"
            f"{ag.get('paused', 0)}",
            str(c.get("dials", 0)),
            str(c.get("answered", 0)),
            str(c.get("abandoned", 0)),
            _pct(c.get("abandon_rate")),
            _pct(win.get("ftc_30d")),
            _pct(win.get("ofcom_24h")),
        )
    agents = Table(title="agents", title_justify="left")
    for col in ("agent", "campaign", "state", "in state", "calls", "talk"):
        agents.add_column(col, justify="right" if col in ("calls", "talk", "in state") else "left")
    for a in st.get("agents", []):
        agents.add_row(
            str(a.get("id")),
            str(a.get("campaign") or "-"),
            str(a.get("state")) + (f" ({a['reason']})" if a.get("reason") else ""),
            _fmt_s(float(a.get("time_in_state_s", 0))),
            str(a.get("calls", 0)),
            _fmt_s(float(a.get("talk_s", 0))),
        )
    return Group(camps, agents)


def cmd_status(args: argparse.Namespace) -> int:
    path = _socket_path(args)
    if path is None:
        return 1
    if args.once:
        st = _request(path, {"command": "status"})
        if st is None:
            return 1
        if args.json:
            print(json.dumps(st))
        else:
            _console().print(render_status(st))
        return 0 if st.get("ok") else 1
    if args.json:  # a stream of JSON lines, one per interval
        try:
            while True:
                st = _request(path, {"command": "status"})
                if st is None:
                    return 1
                print(json.dumps(st), flush=True)
                time.sleep(args.interval)
        except KeyboardInterrupt:
            return 0
    from rich.live import Live
    from rich.text import Text

    try:
        with Live(Text("connecting..."), refresh_per_second=4, screen=False) as live:
            while True:
                st = _request(path, {"command": "status"})
                live.update(render_status(st) if st is not None else Text("dialerd is not running"))
                time.sleep(args.interval)
    except KeyboardInterrupt:
        return 0


# ---------------------------------------------------------------- campaign


def cmd_campaign_list(args: argparse.Namespace) -> int:
    settings = _load_settings(args.config)
    if settings is None:
        return 1
    campaigns, errors = load_campaigns_dir(settings.campaigns_dir)
    for e in errors:
        _err(str(e))
    live: dict[str, dict[str, Any]] = {}
    from dialerd.control import DEFAULT_SOCKET, ControlError, control_request

    path = args.socket or str(getattr(settings, "control_socket", None) or DEFAULT_SOCKET)
    running = True
    try:
        st = control_request(path, {"command": "status"})
        live = {c["campaign"]: c for c in st.get("campaigns", [])}
    except ControlError:
        running = False
    rows = []
    for c in sorted(campaigns.values(), key=lambda c: c.name):
        lc = live.get(c.name)
        rows.append(
            {
                "campaign": c.name,
                "enabled": c.enabled,
                "dial_mode": c.dial_mode.value,
                "agents": len(c.agents),
                "running": lc is not None,
                "paused": None if lc is None else lc.get("paused"),
                "lines_in_use": None if lc is None else lc.get("lines_in_use"),
                "dials": None if lc is None else lc.get("dials"),
                "abandon_rate": None if lc is None else lc.get("abandon_rate"),
            }
        )
    if args.json:
        print(json.dumps({"daemon_running": running, "campaigns": rows}))
        return 1 if errors else 0
    for r in rows:
        if r["running"]:
            state = "paused" if r["paused"] else "dialing"
            live_s = f", {state}, {r['lines_in_use']} lines, {r['dials']} dials"
        else:
            live_s = "" if running else ", daemon not running"
        en = "enabled" if r["enabled"] else "disabled"
        print(f"{r['campaign']}: {en}, {r['dial_mode']}, {r['agents']} agents{live_s}")
    return 1 if errors else 0


def _campaign_command(args: argparse.Namespace, kind: str) -> int:
    path = _socket_path(args)
    if path is None:
        return 1
    req: dict[str, Any] = {"command": kind, "campaign": args.name}
    if args.reason:
        req["reason"] = args.reason
    reply = _request(path, req)
    if reply is None:
        return 1
    if not reply.get("ok"):
        _err(f"dialerd: {reply.get('error', 'refused')}")
        return 1
    print(f"{args.name}: {kind}d" if kind == "pause" else f"{args.name}: resumed")
    return 0


def cmd_campaign_pause(args: argparse.Namespace) -> int:
    return _campaign_command(args, "pause")


def cmd_campaign_resume(args: argparse.Namespace) -> int:
    return _campaign_command(args, "resume")


# ---------------------------------------------------------------- report


def cmd_report(args: argparse.Namespace) -> int:
    from dialerd import report as rep

    settings = _load_settings(args.config)
    if settings is None:
        return 1
    try:
        start = rep.parse_time(args.from_) if args.from_ else None
        end = rep.parse_time(args.to) if args.to else None
    except ValueError as exc:
        _err(f"bad --from/--to: {exc}")
        return 2
    if start is not None and end is not None and end <= start:
        _err("--to must be after --from")
        return 2

    async def q(store: Store) -> dict[str, Any]:
        return await rep.load_report(
            store, campaign=args.campaign, start=start, end=end, by=args.by
        )

    data = asyncio.run(_with_store(settings, q))
    if args.format == "json":
        print(rep.to_json(data))
    elif args.format == "csv":
        sys.stdout.write(rep.to_csv(data))
    else:
        from rich.table import Table

        p = data["period"]
        table = Table(title=f"report {p['from']} .. {p['to']}, by {args.by}", title_justify="left")
        table.add_column(args.by)
        cols = [
            (h, k)
            for h, k in rep.TABLE_COLUMNS
            if args.by == "campaign" or not k.startswith("leads_")
        ]
        for h, _ in cols:
            table.add_column(h, justify="right")
        for r in [*data["rows"], data["total"]]:
            table.add_row(str(r[args.by]), *(rep.cell(k, r.get(k)) for _, k in cols))
        _console().print(table)
        for what in ("outcomes", "dispositions"):
            counts = data["total"].get(what) or {}
            if counts:
                print(f"{what}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return 0


# ---------------------------------------------------------------- run, demo


def cmd_run(args: argparse.Namespace) -> int:
    """The daemon. Exit 0 after a drain; 1 on bad configuration; 3 when AMI
    refuses the login or cannot be reached at start (systemd then restarts
    it with backoff, and the journal names the reason)."""
    from dialerd.asterisk.ami import AmiError
    from dialerd.daemon import Daemon
    from dialerd.logs import configure

    settings = _load_settings(args.config)
    if settings is None:
        return 1
    configure(settings.log.format, settings.log.level)
    try:
        return asyncio.run(Daemon(settings).run())
    except AmiError as exc:
        _err(f"dialerd: {exc}")
        return 3


def cmd_demo(args: argparse.Namespace) -> int:
    from dialerd.demo import run_demo

    return run_demo(
        seconds=args.seconds, agents=args.agents, leads=args.leads, workdir=args.workdir
    )


# ---------------------------------------------------------------- parser


def _config_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        "-c",
        default=_default_config(),
        metavar="PATH",
        help="dialerd.yaml (default: $DIALERD_CONFIG or %(default)s)",
    )


def _socket_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--socket",
        default=None,
        metavar="PATH",
        help="the daemon's control socket (default: control_socket of dialerd.yaml)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dialerd", description="Predictive dialer for Asterisk")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("check-config", help="validate dialerd.yaml and every campaign")
    _config_arg(p)
    p.set_defaults(func=cmd_check_config)

    leads = sub.add_parser("leads", help="manage leads")
    leads_sub = leads.add_subparsers(dest="leads_command", metavar="ACTION", required=True)
    p = leads_sub.add_parser("import", help="import a CSV file of leads into a campaign")
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
    _config_arg(p)
    p.set_defaults(func=cmd_leads_import)

    p = leads_sub.add_parser("list", help="list a campaign's leads")
    p.add_argument("campaign", metavar="CAMPAIGN")
    p.add_argument("--status", action="append", choices=LEAD_STATUSES, help="(repeatable)")
    p.add_argument("--limit", type=int, default=100, help="at most N leads (default %(default)s)")
    p.add_argument("--json", action="store_true", help="JSON array instead of a table")
    _config_arg(p)
    p.set_defaults(func=cmd_leads_list)

    p = leads_sub.add_parser(
        "export", help="CSV of the campaign's results: one row per attempt, with the lead"
    )
    p.add_argument("campaign", metavar="CAMPAIGN")
    p.add_argument("file", metavar="FILE.csv", help="'-' for stdout")
    _config_arg(p)
    p.set_defaults(func=cmd_leads_export)

    p = leads_sub.add_parser(
        "reset", help="list recycling: put finished leads back to new, attempts 0"
    )
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
    _config_arg(p)
    p.set_defaults(func=cmd_leads_reset)

    p = leads_sub.add_parser("callback", help="a customer-chosen callback for a lead")
    p.add_argument("lead_id", metavar="LEAD_ID", type=int)
    p.add_argument("--at", required=True, help="+90m, +2h, +1d or an ISO date-time")
    p.add_argument("--agent", help="only this agent takes it until the grace ends")
    p.add_argument("--grace", type=float, default=900.0, help="seconds (default %(default)s)")
    _config_arg(p)
    p.set_defaults(func=cmd_leads_callback)

    p = leads_sub.add_parser(
        "recycle", help="bring never-reached leads back after compliance.recycle_after_days"
    )
    p.add_argument("campaign", metavar="CAMPAIGN")
    _config_arg(p)
    p.set_defaults(func=cmd_leads_recycle)

    dnc = sub.add_parser("dnc", help="do-not-call lists (global, or per campaign)")
    dnc_sub = dnc.add_subparsers(dest="dnc_command", metavar="ACTION", required=True)
    for action, what in (
        ("import", "numbers of a file (one a line, or a CSV with a phone column)"),
        ("add", "numbers"),
        ("remove", "numbers"),
    ):
        p = dnc_sub.add_parser(action, help=f"{action} {what}")
        if action == "import":
            p.add_argument("file", metavar="FILE")
        else:
            p.add_argument("numbers", metavar="NUMBER", nargs="+")
        p.add_argument("--campaign", help="the campaign's list (default: the global list)")
        p.add_argument("--region", default="US", help="for numbers without +country (US)")
        _config_arg(p)
        p.set_defaults(func=cmd_dnc)

    p = sub.add_parser("status", help="live view of campaigns and agents (from the daemon)")
    p.add_argument("--once", action="store_true", help="print once and exit")
    p.add_argument("--json", action="store_true", help="JSON (with --once: one object)")
    p.add_argument("--interval", type=float, default=1.0, help="refresh seconds (default 1)")
    _socket_arg(p)
    _config_arg(p)
    p.set_defaults(func=cmd_status)

    camp = sub.add_parser("campaign", help="list, pause or resume campaigns")
    camp_sub = camp.add_subparsers(dest="campaign_command", metavar="ACTION", required=True)
    p = camp_sub.add_parser("list", help="campaign files, with live state if the daemon runs")
    p.add_argument("--json", action="store_true")
    _socket_arg(p)
    _config_arg(p)
    p.set_defaults(func=cmd_campaign_list)
    for action, fn in (("pause", cmd_campaign_pause), ("resume", cmd_campaign_resume)):
        p = camp_sub.add_parser(action, help=f"{action} a campaign's dialing (live calls go on)")
        p.add_argument("name", metavar="NAME")
        p.add_argument("--reason", default="", help="logged with the command")
        _socket_arg(p)
        _config_arg(p)
        p.set_defaults(func=fn)

    p = sub.add_parser("report", help="figures over a period, per campaign, agent or hour")
    p.add_argument("--campaign", default=None)
    p.add_argument("--from", dest="from_", metavar="ISO", help="start (local time unless +hh:mm)")
    p.add_argument("--to", metavar="ISO", help="end, exclusive (default now)")
    p.add_argument("--by", choices=("campaign", "agent", "hour"), default="campaign")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table")
    _config_arg(p)
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("run", help="run the daemon (SIGHUP reloads campaigns, SIGTERM drains)")
    _config_arg(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser(
        "demo", help="sandbox Asterisk + simulated customers and agents + the daemon, live"
    )
    p.add_argument("--seconds", type=float, default=90, help="dialing time (default %(default)s)")
    p.add_argument("--agents", type=int, default=8, help="simulated agents (default %(default)s)")
    p.add_argument("--leads", type=int, default=400, help="simulated leads (default %(default)s)")
    p.add_argument("--workdir", default=None, help="keep config, store and logs here")
    p.set_defaults(func=cmd_demo)

    try:
        from dialerd.sim.cli import add_parser as add_simulate
    except ImportError:  # the simulator is optional while it is being built
        pass
    else:
        add_simulate(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    func: Handler = args.func
    try:
        return func(args)
    except BrokenPipeError:
        # `dialerd leads export c - | head`: the reader left; not an error of
        # ours. Point stdout at devnull so the interpreter's flush at exit
        # does not raise again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
