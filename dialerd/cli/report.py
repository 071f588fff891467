"""``dialerd report``: figures over a period from the store alone, so it
runs on a stopped system, on a copy of the database, or from cron. The
figures themselves are computed in :mod:`dialerd.report` (outbound) and
:mod:`dialerd.report_inbound` (queues, and agents on both kinds of call);
this is the command line and the tables.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from typing import Any

from dialerd.cli.common import Exit, config_arg, console, in_store, with_settings
from dialerd.settings import Settings

PARTS = ("all", "outbound", "queues", "agents")


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("report", help="figures over a period, per campaign, agent or hour")
    p.add_argument("--campaign", default=None)
    p.add_argument("--from", dest="from_", metavar="ISO", help="start (local time unless +hh:mm)")
    p.add_argument("--to", metavar="ISO", help="end, exclusive (default now)")
    p.add_argument("--by", choices=("campaign", "agent", "hour"), default="campaign")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table")
    p.add_argument(
        "--part",
        choices=PARTS,
        default=None,
        help="outbound (by --by), queues (inbound per queue and hour), agents (inbound and "
        "outbound talk, occupancy) or all; default all, and outbound for csv (one table)",
    )
    config_arg(p)
    p.set_defaults(func=cmd_report)


@with_settings
def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    from dialerd import report as rep

    try:
        start = rep.parse_time(args.from_) if args.from_ else None
        end = rep.parse_time(args.to) if args.to else None
    except ValueError as exc:
        raise Exit(2, f"bad --from/--to: {exc}") from None
    if start is not None and end is not None and end <= start:
        raise Exit(2, "--to must be after --from")
    part = args.part or ("outbound" if args.format == "csv" else "all")
    if args.format == "csv" and part == "all":
        raise Exit(2, "--format csv holds one part: --part outbound, queues or agents")
    if args.campaign is not None and part in ("queues", "agents"):
        raise Exit(2, f"--part {part} is not per campaign: leave out --campaign")
    data = in_store(
        settings,
        lambda store: rep.load_report(
            store, campaign=args.campaign, start=start, end=end, by=args.by
        ),
    )
    if args.format == "json":
        print(rep.to_json(_json_part(data, part)))
    elif args.format == "csv":
        sys.stdout.write(rep.to_csv(data) if part == "outbound" else _inbound_csv(data, part))
    else:
        if part in ("all", "outbound"):
            _print_table(data, args.by)
        inbound = data.get("inbound")
        if inbound is not None and part != "outbound":
            _print_inbound(data, inbound, part, always=part != "all")
    return 0


def _json_part(data: dict[str, Any], part: str) -> dict[str, Any]:
    if part == "all":
        return data
    if part == "outbound":
        return {k: v for k, v in data.items() if k != "inbound"}
    inbound = data["inbound"]
    keys = ("queues", "total", "refused") if part == "queues" else ("agents", "agents_total")
    return {"period": data["period"], **{k: inbound[k] for k in keys}}


def _inbound_csv(data: dict[str, Any], part: str) -> str:
    from dialerd import report_inbound as ri

    inbound = data["inbound"]
    header, rows = (ri.queues_csv_rows if part == "queues" else ri.agents_csv_rows)(inbound)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def _print_table(data: dict[str, Any], by: str) -> None:
    from rich.table import Table

    from dialerd import report as rep

    p = data["period"]
    table = Table(title=f"report {p['from']} .. {p['to']}, by {by}", title_justify="left")
    table.add_column(by)
    cols = [(h, k) for h, k in rep.TABLE_COLUMNS if by == "campaign" or not k.startswith("leads_")]
    for h, _ in cols:
        table.add_column(h, justify="right")
    for r in [*data["rows"], data["total"]]:
        table.add_row(str(r[by]), *(rep.cell(k, r.get(k)) for _, k in cols))
    console().print(table)
    for what in ("outcomes", "dispositions"):
        counts = data["total"].get(what) or {}
        if counts:
            print(f"{what}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))


def _print_inbound(data: dict[str, Any], inbound: dict[str, Any], part: str, always: bool) -> None:
    """The inbound tables: left out of the default report when the period
    had no inbound call (an outbound-only centre sees no change)."""
    from rich.table import Table

    from dialerd import report_inbound as ri

    if not always and not inbound["queues"] and not inbound["refused"]["calls"]:
        return
    p = data["period"]
    out = console()
    if part in ("all", "queues"):
        table = Table(
            title=f"inbound {p['from']} .. {p['to']}, by queue and hour", title_justify="left"
        )
        table.add_column("queue")
        table.add_column("hour")
        for h, _ in ri.QUEUE_COLUMNS:
            table.add_column(h, justify="right")
        rows = [*inbound["queues"]]
        if len({r["queue"] for r in rows}) > 1:
            rows.append(inbound["total"])
        for r in rows:
            table.add_row(
                r["queue"], r["hour"], *(ri.queue_cell(k, r) for _, k in ri.QUEUE_COLUMNS)
            )
        out.print(table)
        print(ri.refused_line(inbound))
    if part in ("all", "agents"):
        table = Table(
            title=f"agents {p['from']} .. {p['to']}, inbound and outbound", title_justify="left"
        )
        table.add_column("agent")
        for h, _ in ri.AGENT_COLUMNS:
            table.add_column(h, justify="right")
        for r in [*inbound["agents"], inbound["agents_total"]]:
            table.add_row(r["agent"], *(ri.agent_cell(k, r) for _, k in ri.AGENT_COLUMNS))
        out.print(table)
