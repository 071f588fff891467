"""``dialerd report``: figures over a period from the store alone, so it
runs on a stopped system, on a copy of the database, or from cron. The
figures themselves are computed in :mod:`dialerd.report`; this is the
command line and the table.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from dialerd.cli.common import Exit, config_arg, console, in_store, with_settings
from dialerd.settings import Settings


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("report", help="figures over a period, per campaign, agent or hour")
    p.add_argument("--campaign", default=None)
    p.add_argument("--from", dest="from_", metavar="ISO", help="start (local time unless +hh:mm)")
    p.add_argument("--to", metavar="ISO", help="end, exclusive (default now)")
    p.add_argument("--by", choices=("campaign", "agent", "hour"), default="campaign")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table")
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
    data = in_store(
        settings,
        lambda store: rep.load_report(
            store, campaign=args.campaign, start=start, end=end, by=args.by
        ),
    )
    if args.format == "json":
        print(rep.to_json(data))
    elif args.format == "csv":
        sys.stdout.write(rep.to_csv(data))
    else:
        _print_table(data, args.by)
    return 0


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
