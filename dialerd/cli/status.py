"""``dialerd status``: the supervisor's live view, read from the running
daemon over its control socket (the store alone cannot say who is talking
now). ``--once --json`` is the form for scripts and monitoring.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from dialerd.cli.common import Exit, ask, config_arg, console, socket_arg, socket_path


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("status", help="live view of campaigns and agents (from the daemon)")
    p.add_argument("--once", action="store_true", help="print once and exit")
    p.add_argument("--json", action="store_true", help="JSON (with --once: one object)")
    p.add_argument("--interval", type=float, default=1.0, help="refresh seconds (default 1)")
    socket_arg(p)
    config_arg(p)
    p.set_defaults(func=cmd_status)


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
    if st.get("degraded"):
        # the store cannot record: no new call until it can (escaped: the
        # reason is the store's error text, not markup)
        from rich.markup import escape

        head += f"  [red]DEGRADED ({escape(str(st['degraded']))}): no new calls[/red]"
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
    for col in ("agent", "campaign", "state", "in state", "calls", "talk", "in/out", "occ"):
        agents.add_column(col, justify="left" if col in ("agent", "campaign", "state") else "right")
    for a in st.get("agents", []):
        agents.add_row(
            str(a.get("id")),
            str(a.get("campaign") or "-"),
            str(a.get("state")) + (f" ({a['reason']})" if a.get("reason") else ""),
            _fmt_s(float(a.get("time_in_state_s", 0))),
            str(a.get("calls", 0)),
            _fmt_s(float(a.get("talk_s", 0))),
            f"{_fmt_s(float(a.get('inbound_talk_s', 0)))}/"
            f"{_fmt_s(float(a.get('outbound_talk_s', 0)))}",
            _pct(a.get("occupancy")),
        )
    queues = st.get("queues") or []
    if not queues:
        return Group(camps, agents)
    return Group(camps, _queues_table(queues), agents)


def _queues_table(queues: list[dict[str, Any]]) -> Any:
    """Inbound queues: live waiting, and today's figures (local day)."""
    from rich.table import Table

    day = queues[0].get("day", "")
    t = Table(title=f"queues (counts: today {day})", title_justify="left")
    for col in (
        "queue",
        "state",
        "waiting",
        "longest",
        "ready/talk",
        "SL/target",
        "ASA",
        "answered/offered",
        "abandoned",
        "fallback",
        "callback",
    ):
        t.add_column(col, justify="left" if col in ("queue", "state") else "right")
    for q in queues:
        ag = q.get("agents", {})
        tgt = q.get("target", {})
        sl = q.get("service_level")
        target = f"{tgt.get('percent', 0):g}%/{tgt.get('within_s', 0):g}s"
        sl_txt = _pct(sl)
        if sl is not None and 100 * float(sl) < float(tgt.get("percent", 0)):
            sl_txt = f"[red]{sl_txt}[/red]"
        asa = q.get("asa_s")
        t.add_row(
            str(q.get("queue")),
            "taking calls" if q.get("enabled") else "disabled",
            str(q.get("waiting", 0)),
            _fmt_s(float(q.get("longest_wait_s", 0))),
            f"{ag.get('ready', 0)}/{ag.get('talking', 0)}",
            f"{sl_txt} / {target}",
            "-" if asa is None else f"{float(asa):.1f}s",
            f"{q.get('answered', 0)}/{q.get('offered', 0)}",
            f"{q.get('abandoned', 0)} (+{q.get('abandoned_short', 0)} short)",
            str(q.get("fallbacks", 0)),
            str(q.get("callbacks", 0)),
        )
    return t


def cmd_status(args: argparse.Namespace) -> int:
    path = socket_path(args)
    if args.once:
        st = ask(path, {"command": "status"})
        if args.json:
            print(json.dumps(st))
        else:
            console().print(render_status(st))
        return 0 if st.get("ok") else 1
    if args.json:  # a stream of JSON lines, one per interval
        try:
            while True:
                print(json.dumps(ask(path, {"command": "status"})), flush=True)
                time.sleep(args.interval)
        except KeyboardInterrupt:
            return 0
    return _live(path, args.interval)


def _live(path: str, interval: float) -> int:
    """Redraw until ^C; a daemon that goes away is shown, not fatal."""
    from rich.live import Live
    from rich.text import Text

    try:
        with Live(Text("connecting..."), refresh_per_second=4, screen=False) as live:
            while True:
                try:
                    view = render_status(ask(path, {"command": "status"}))
                except Exit as exc:
                    exc.report()
                    view = Text("dialerd is not running")
                live.update(view)
                time.sleep(interval)
    except KeyboardInterrupt:
        return 0
