"""``dialerd demo``: the whole product in a minute or two on this machine.

Builds (or reuses) the Asterisk sandbox, starts it with the project's
``asterisk-conf/``, writes a campaign and a list of simulated customers,
logs simulated agents into their rooms, runs the real daemon against it with
a live view, drains it and prints what happened from the store.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from pathlib import Path

import structlog
from rich.console import Console
from rich.live import Live
from rich.table import Table

from dialerd.campaign.loader import load_campaign_file
from dialerd.daemon import Daemon
from dialerd.sandbox.asterisk import AsteriskSandbox, ensure_root
from dialerd.sandbox.recorder import AmiRecorder
from dialerd.sandbox.scenario import login_agents, make_leads, sim_campaign, write_config, write_csv
from dialerd.settings import load_settings
from dialerd.store import store_session
from dialerd.store.importer import import_csv


def _live_table(daemon: Daemon, elapsed: float, total: float) -> Table:
    t = Table(title=f"dialerd demo - {elapsed:4.0f}/{total:.0f} s", expand=False)
    # short headers: the table must fit an 80-column terminal unabridged
    for col in (
        "camp", "ready", "talk", "wrap", "ring", "wait", "dials",
        "answ", "conn", "abnd", "ab%",
    ):  # fmt: skip
        t.add_column(col, justify="right")
    for name, run in daemon.core.campaigns.items():
        st = run.stats
        t.add_row(
            name,
            str(len(run.ready)),
            str(run.talking),
            str(run.wrap),
            str(run.dialing),
            str(len(run.waiting)),
            str(st.dials),
            str(st.answered),
            str(st.connected),
            str(st.abandoned),
            f"{100 * st.abandon_rate:.1f}",
        )
    return t


async def _demo(seconds: float, n_agents: int, n_leads: int, work: Path, console: Console) -> int:
    console.print("[bold]1/4[/] Asterisk sandbox: building or reusing the Debian sid tree ...")
    root = ensure_root()
    with AsteriskSandbox(root) as sb:
        console.print(f"     Asterisk up on AMI 127.0.0.1:{sb.port} in {sb.startup_seconds:.1f} s")
        agents = [f"10{i:02d}" for i in range(1, n_agents + 1)]
        cfg_path = write_config(
            work,
            sb.ami_user,
            {"demo": sim_campaign(agents, dial_mode="ratio", dial_ratio=1.3, wrap_up_s=2)},
            log={"format": "json", "level": "info"},
        )
        settings = load_settings(cfg_path)
        camp = load_campaign_file(work / "campaigns" / "demo.yaml")
        console.print(f"[bold]2/4[/] importing {n_leads} simulated leads ({work}/leads.csv)")
        numbers = make_leads(n_leads, talk=(3, 12), ring=(1, 4))
        async with store_session(settings) as store:
            await store.ensure_campaign("demo")
            rep = await import_csv(store, camp, write_csv(work / "leads.csv", numbers), "GB")
        console.print(f"     imported {rep.imported}, rejected {len(rep.errors)}")
        h = sb.harness_user
        rec = await AmiRecorder.connect(h)
        console.print(f"[bold]3/4[/] logging in {n_agents} simulated agents, starting the daemon")
        await login_agents(rec, agents)
        daemon = Daemon(settings)
        task = asyncio.create_task(daemon.run())
        t0 = time.monotonic()
        with Live(_live_table(daemon, 0, seconds), console=console, refresh_per_second=4) as live:
            while (el := time.monotonic() - t0) < seconds and not task.done():
                await asyncio.sleep(0.25)
                live.update(_live_table(daemon, el, seconds))
            console.print("     draining: no new calls, live calls finish ...")
            daemon.request_stop()
            while not task.done():
                await asyncio.sleep(0.25)
                live.update(_live_table(daemon, time.monotonic() - t0, seconds))
        rc = await task
        rec.close()
        console.print("[bold]4/4[/] summary from the store")
        async with store_session(settings) as store:
            outcomes = await store.outcome_counts("demo")
            leads = await store.lead_counts("demo")
        t = Table(title="attempts by outcome")
        t.add_column("outcome")
        t.add_column("attempts", justify="right")
        for k, v in sorted(outcomes.items(), key=lambda kv: -kv[1]):
            t.add_row(k, str(v))
        t.add_row("[bold]total", f"[bold]{sum(outcomes.values())}")
        console.print(t)
        t2 = Table(title="leads by status")
        t2.add_column("status")
        t2.add_column("leads", justify="right")
        for k, v in sorted(leads.items()):
            t2.add_row(k, str(v))
        console.print(t2)
        st = daemon.core.campaigns["demo"].stats
        console.print(
            f"answered {st.answered}, connected to agents {st.connected}, abandoned "
            f"{st.abandoned} ({100 * st.abandon_rate:.1f}% of answered); logs: {work}/dialerd.log"
        )
        return rc


def run_demo(
    seconds: float = 90, agents: int = 8, leads: int = 400, workdir: str | None = None
) -> int:
    console = Console()
    work = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="dialerd-demo-"))
    work.mkdir(parents=True, exist_ok=True)
    # the live view owns the terminal: daemon logs go to a file
    log_file = (work / "dialerd.log").open("a")
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(),
        ],
        logger_factory=structlog.WriteLoggerFactory(file=log_file),
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
    )
    try:
        return asyncio.run(_demo(seconds, agents, leads, work, console))
    finally:
        log_file.close()
