"""``dialerd dnc``: do-not-call lists live in the store, not in a file the
daemon was started with, so a change made here reaches a running daemon
within 5 s, without a reload or a restart.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from dialerd.cli.common import Exit, config_arg, err, in_store, with_settings
from dialerd.settings import Settings
from dialerd.store.api import StoreApi


def add_parser(subparsers: Any) -> None:
    dnc = subparsers.add_parser("dnc", help="do-not-call lists (global, or per campaign)")
    sub = dnc.add_subparsers(dest="dnc_command", metavar="ACTION", required=True)
    for action, what in (
        ("import", "numbers of a file (one a line, or a CSV with a phone column)"),
        ("add", "numbers"),
        ("remove", "numbers"),
    ):
        p = sub.add_parser(action, help=f"{action} {what}")
        if action == "import":
            p.add_argument("file", metavar="FILE")
        else:
            p.add_argument("numbers", metavar="NUMBER", nargs="+")
        p.add_argument("--campaign", help="the campaign's list (default: the global list)")
        p.add_argument("--region", default="US", help="for numbers without +country (US)")
        config_arg(p)
        p.set_defaults(func=cmd_dnc)


def _file_numbers(path: str, region: str) -> list[str]:
    """The file's numbers; a line that is not one is reported and skipped."""
    from dialerd.rules.dnc import parse_dnc

    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise Exit(1, f"{path}: {exc.strerror}") from None
    parsed = parse_dnc(text, region)
    for e in parsed.errors:
        err(f"{path}:{e.line}: {e.reason}")
    return parsed.numbers


def _given_numbers(raw_numbers: list[str], region: str) -> list[str]:
    """The numbers on the command line; the first bad one stops the command."""
    from dialerd.phone import PhoneError, normalize

    out = []
    for raw in raw_numbers:
        try:
            out.append(normalize(raw, region))
        except PhoneError as exc:
            raise Exit(1, f"{raw}: {exc}") from None
    return out


@with_settings
def cmd_dnc(args: argparse.Namespace, settings: Settings) -> int:
    """``dnc import FILE`` / ``dnc add NUMBER...`` / ``dnc remove NUMBER...``:
    the global list, or a campaign's with ``--campaign``."""
    if args.dnc_command == "import":
        numbers, source = _file_numbers(args.file, args.region), "import"
    else:
        numbers, source = _given_numbers(args.numbers, args.region), "manual"

    async def apply(store: StoreApi) -> int:
        if args.dnc_command == "remove":
            return await store.dnc_remove(numbers, args.campaign)
        return await store.dnc_add(numbers, args.campaign, source)

    n = in_store(settings, apply)
    scope = f"campaign {args.campaign}" if args.campaign else "the global list"
    verb = "removed from" if args.dnc_command == "remove" else "added to"
    print(f"{n} numbers {verb} {scope}")
    return 0
