"""``dialerd campaign``: what a supervisor does to a campaign while the
daemon runs. Pause and resume go through the daemon's control socket (the
daemon owns the dialing state; a file edit would need a reload), while the
list reads the campaign files and adds live state only when a daemon
answers, so it works on a stopped system too.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from dialerd.campaign.loader import load_campaigns_dir
from dialerd.cli.common import (
    Exit,
    ask,
    config_arg,
    control_socket,
    err,
    socket_arg,
    socket_path,
    with_settings,
)
from dialerd.settings import Settings


def add_parser(subparsers: Any) -> None:
    camp = subparsers.add_parser("campaign", help="list, pause or resume campaigns")
    sub = camp.add_subparsers(dest="campaign_command", metavar="ACTION", required=True)
    p = sub.add_parser("list", help="campaign files, with live state if the daemon runs")
    p.add_argument("--json", action="store_true")
    socket_arg(p)
    config_arg(p)
    p.set_defaults(func=cmd_campaign_list)
    for action, fn in (("pause", cmd_campaign_pause), ("resume", cmd_campaign_resume)):
        p = sub.add_parser(action, help=f"{action} a campaign's dialing (live calls go on)")
        p.add_argument("name", metavar="NAME")
        p.add_argument("--reason", default="", help="logged with the command")
        socket_arg(p)
        config_arg(p)
        p.set_defaults(func=fn)


@with_settings
def cmd_campaign_list(args: argparse.Namespace, settings: Settings) -> int:
    from dialerd.control import ControlError, control_request

    campaigns, errors = load_campaigns_dir(settings.campaigns_dir, settings.site())
    for e in errors:
        err(str(e))
    live: dict[str, dict[str, Any]] = {}
    path = args.socket or control_socket(settings)
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


def _control(args: argparse.Namespace, kind: str) -> None:
    """Send ``kind`` for the campaign ``args.name``; exit 1 if refused."""
    req: dict[str, Any] = {"command": kind, "campaign": args.name}
    if args.reason:
        req["reason"] = args.reason
    reply = ask(socket_path(args), req)
    if not reply.get("ok"):
        raise Exit(1, f"dialerd: {reply.get('error', 'refused')}")


def cmd_campaign_pause(args: argparse.Namespace) -> int:
    _control(args, "pause")
    print(f"{args.name}: paused")
    return 0


def cmd_campaign_resume(args: argparse.Namespace) -> int:
    _control(args, "resume")
    print(f"{args.name}: resumed")
    return 0
