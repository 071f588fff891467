"""``dialerd demo``: the whole product on one machine for someone who has
not installed it yet, so it takes no configuration at all; everything it
needs (the Asterisk sandbox, a campaign, simulated customers and agents) is
built by :mod:`dialerd.demo`.
"""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "demo", help="sandbox Asterisk + simulated customers and agents + the daemon, live"
    )
    p.add_argument("--seconds", type=float, default=90, help="dialing time (default %(default)s)")
    p.add_argument("--agents", type=int, default=8, help="simulated agents (default %(default)s)")
    p.add_argument("--leads", type=int, default=400, help="simulated leads (default %(default)s)")
    p.add_argument("--workdir", default=None, help="keep config, store and logs here")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    from dialerd.demo import run_demo

    return run_demo(
        seconds=args.seconds, agents=args.agents, leads=args.leads, workdir=args.workdir
    )
