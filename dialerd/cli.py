"""The ``dialerd`` command.

One function per subcommand, registered in :data:`COMMANDS`; each returns
the exit code, so ``main`` is testable without a subprocess. Diagnostics go
to stderr, results to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Sequence

from dialerd.campaign.loader import ConfigError, load_campaigns_dir
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
    for c in sorted(campaigns.values(), key=lambda c: c.name):
        state = "enabled" if c.enabled else "disabled"
        print(
            f"campaign {c.name}: OK ({state}, {c.dial_mode.value}, {len(c.agents)} agents,"
            f" trunk {c.trunk})"
        )
    if not campaigns and not errors:
        _err(f"{settings.campaigns_dir}: warning: no campaign files (*.yaml, *.yml)")
    return 1 if errors else 0


# ---------------------------------------------------------------- leads import


async def _import(settings: Settings, campaign: str, csv_path: str) -> int:
    campaigns, errors = load_campaigns_dir(settings.campaigns_dir)
    found: Campaign | None = campaigns.get(campaign)
    if found is None:
        for e in errors:
            _err(str(e))
        known = ", ".join(sorted(campaigns)) or "none"
        _err(
            f"unknown or invalid campaign {campaign!r} in {settings.campaigns_dir} (valid: {known})"
        )
        return 1
    store = await Store.open(settings.store.path)
    try:
        report = await import_csv(store, found, csv_path)
    except OSError as exc:
        _err(f"{csv_path}: cannot read: {exc.strerror or exc}")
        return 1
    finally:
        await store.close()
    for row in report.errors:
        _err(f"{csv_path}:{row.line}: {row.reason}")
    print(f"imported {report.imported}, duplicates {report.duplicates}, rejected {report.rejected}")
    return 0 if report.imported else 1


def cmd_leads_import(args: argparse.Namespace) -> int:
    settings = _load_settings(args.config)
    if settings is None:
        return 1
    return asyncio.run(_import(settings, args.campaign, args.file))


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
    _config_arg(p)
    p.set_defaults(func=cmd_leads_import)

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
    return func(args)


if __name__ == "__main__":
    sys.exit(main())
