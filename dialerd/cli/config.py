"""``dialerd check-config``: an admin runs it before a reload or a restart,
so it reports every problem at once (file, line, field) and exits 1 if the
daemon would refuse or skip anything, rather than stopping at the first.
"""

from __future__ import annotations

import argparse
from typing import Any

from dialerd.campaign.lint import check_campaign
from dialerd.campaign.loader import load_campaigns_dir
from dialerd.campaign.queue_loader import describe, load_queues_dir
from dialerd.campaign.queues import summary
from dialerd.cli.agents import agents_findings
from dialerd.cli.common import config_arg, err, with_settings
from dialerd.settings import Settings, security_findings


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "check-config", help="validate dialerd.yaml, every campaign and every inbound queue"
    )
    config_arg(p)
    p.set_defaults(func=cmd_check_config)


@with_settings
def cmd_check_config(args: argparse.Namespace, settings: Settings) -> int:
    campaigns, errors = load_campaigns_dir(settings.campaigns_dir, settings.site())
    for e in errors:
        err(str(e))
    print(
        f"{args.config}: OK (AMI {settings.ami.username}@{settings.ami.host}:{settings.ami.port},"
        f" store {settings.store.describe()})"
    )
    failed = bool(errors)
    for level, message in security_findings(settings):
        err(f"{args.config}: {level}: {message}")
        failed = failed or level == "error"
    lines, agent_findings, broken = agents_findings(
        settings, {a for c in campaigns.values() for a in c.agents}
    )
    for line in lines:
        print(line)
    for level, message in agent_findings:
        err(message if broken else f"{settings.agents_file}: {level}: {message}")
        failed = failed or level == "error"
    for c in sorted(campaigns.values(), key=lambda c: c.name):
        state = "enabled" if c.enabled else "disabled"
        findings = check_campaign(c)
        bad = [f for f in findings if f.level == "error"]
        for f in findings:
            err(f"campaign {c.name}: {f.level}: {f.field}: {f.message}")
        if bad:
            failed = True
            print(f"campaign {c.name}: REFUSED ({len(bad)} compliance error(s); not dialed)")
            continue
        print(
            f"campaign {c.name}: OK ({state}, {c.dial_mode.value}, {len(c.agents)} agents,"
            f" trunk {c.trunk})"
        )
    if not campaigns and not errors:
        err(f"{settings.campaigns_dir}: warning: no campaign files (*.yaml, *.yml)")
    queues = load_queues_dir(settings.queues_dir, campaigns)
    for e in queues.errors:
        err(str(e))
    for e in queues.warnings:
        err(describe(e, "warning"))
    for q in sorted(queues.queues.values(), key=lambda q: q.name):
        print(summary(q, campaigns))
    failed = failed or bool(queues.errors)
    return 1 if failed else 0
