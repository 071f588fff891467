"""The ``dialerd`` command: one module per command group, each adding its
own subparser, so a command is read (and changed) in one place and this file
only decides their order in ``--help``.

Every command returns its exit status, so :func:`main` is testable without a
subprocess; one that cannot go on raises :class:`~dialerd.cli.common.Exit`
and its reason goes to stderr here. Results go to stdout, diagnostics to
stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from dialerd.cli import (
    agents,
    campaign,
    config,
    demo,
    dnc,
    leads,
    report,
    run,
    simulate,
    status,
)
from dialerd.cli.common import Exit, Handler

#: in ``dialerd --help`` order
GROUPS = (config, agents, leads, dnc, status, campaign, report, run, demo, simulate)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dialerd", description="Predictive dialer for Asterisk")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for group in GROUPS:
        group.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    func: Handler = args.func
    try:
        return func(args)
    except Exit as exc:
        return exc.report()
    except BrokenPipeError:
        # `dialerd leads export c - | head`: the reader left; not an error of
        # ours. Point stdout at devnull so the interpreter's flush at exit
        # does not raise again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
