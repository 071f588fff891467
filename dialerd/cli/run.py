"""``dialerd run``: the daemon's entry under systemd, where the exit status
is all the service manager sees, so each one says one thing: 0 after a
drain (SIGTERM), 1 on a bad configuration, 3 when Asterisk refuses the AMI
login or cannot be reached at start, 4 when the store cannot be opened or
read at start (systemd then restarts it with backoff, and the journal names
the reason in one line).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from dialerd.cli.common import Exit, config_arg, with_settings
from dialerd.settings import Settings, security_findings


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "run", help="run the daemon (SIGHUP reloads campaigns, SIGTERM drains)"
    )
    config_arg(p)
    p.set_defaults(func=cmd_run)


@with_settings
def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from dialerd.asterisk.ami import AmiError
    from dialerd.daemon import Daemon
    from dialerd.logs import configure
    from dialerd.store.api import StoreUnavailableError

    findings = security_findings(settings)
    refused = [m for level, m in findings if level == "error"]
    if refused:
        raise Exit(1, *(f"dialerd: {args.config}: {m}" for m in refused))
    configure(settings.log.format, settings.log.level)
    for _level, message in findings:
        print(f"dialerd: {args.config}: warning: {message}", file=sys.stderr)
    try:
        return asyncio.run(Daemon(settings).run())
    except AmiError as exc:
        raise Exit(3, f"dialerd: {exc}") from None
    except StoreUnavailableError as exc:
        raise Exit(4, f"dialerd: {exc}") from None
