"""Shared by the demo, the integration tests and the bench scripts: a daemon
configuration pointed at a sandbox, simulated leads, simulated agents.

Numbers are London numbers ``+44 20 7iii ORTT`` whose last four digits tell
``[sim-customers]`` what to do (see ``extensions_sim.conf``), so a lead's
outcome is known in advance and a test can check the dialer against it.
"""

from __future__ import annotations

import asyncio
import csv
import random
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from dialerd.campaign.model import LEGAL_OVERRIDES, TRUNK_RE
from dialerd.sandbox.asterisk import AmiCredentials
from dialerd.sandbox.recorder import AmiRecorder
from dialerd.settings import Settings, load_settings
from dialerd.store import store_session
from dialerd.store.importer import ImportReport, import_csv

if TYPE_CHECKING:
    from dialerd.daemon import Daemon
    from dialerd.store.api import StoredAttempt, StoredLead

#: outcome digit of [sim-customers]
ANSWER, BUSY, NO_ANSWER, CONGESTION, REJECTED, UNALLOCATED = 1, 2, 3, 4, 5, 6
RING_FOREVER = 9


#: UK geographic prefixes with room for ``iii ORTT`` after them: London's
#: 020 7/8/3 blocks, then Manchester, Glasgow, Liverpool, Newcastle, Cardiff
#: (every 1000-number block checked valid with phonenumbers)
_PREFIXES = ("+44207", "+44208", "+44203", "+44161", "+44141", "+44151", "+44191", "+44292")


def sim_number(index: int, outcome: int, ring_s: int, talk_s: int) -> str:
    """A valid UK number that makes ``[sim-customers]`` behave so; ``index``
    (0-7999) keeps numbers distinct."""
    if not (0 <= index < 8000 and 1 <= outcome <= 9 and 0 <= ring_s <= 9 and 0 <= talk_s <= 99):
        raise ValueError("index 0-7999, outcome 1-9, ring 0-9, talk 0-99")
    return f"{_PREFIXES[index // 1000]}{index % 1000:03d}{outcome}{ring_s}{talk_s:02d}"


def decode(number: str) -> tuple[int, int, int]:
    """(outcome, ring_s, talk_s) of a simulated number."""
    d = number[-4:]
    return int(d[0]), int(d[1]), int(d[2:])


@dataclass(frozen=True, slots=True)
class Mix:
    """Shares of each simulated outcome (they need not sum to 1)."""

    answer: float = 0.55
    busy: float = 0.15
    no_answer: float = 0.12
    congestion: float = 0.08
    rejected: float = 0.05
    unallocated: float = 0.05


def make_leads(
    n: int,
    mix: Mix = Mix(),
    *,
    seed: int = 7,
    talk: tuple[int, int] = (1, 3),
    ring: tuple[int, int] = (0, 2),
    start_index: int = 0,
) -> list[str]:
    """``n`` distinct simulated numbers with outcomes drawn from ``mix``."""
    rng = random.Random(seed)
    kinds = [ANSWER, BUSY, NO_ANSWER, CONGESTION, REJECTED, UNALLOCATED]
    weights = [mix.answer, mix.busy, mix.no_answer, mix.congestion, mix.rejected, mix.unallocated]
    out = []
    for i in range(start_index, start_index + n):
        o = rng.choices(kinds, weights)[0]
        out.append(sim_number(i, o, rng.randint(*ring), rng.randint(*talk) if o == ANSWER else 0))
    return out


def write_csv(path: Path, numbers: list[str]) -> Path:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["phone", "name"])
        for i, n in enumerate(numbers):
            w.writerow([n, f"Customer {i}"])
    return path


def write_config(
    workdir: Path,
    ami: AmiCredentials,
    campaigns: dict[str, dict[str, Any]],
    **settings: Any,
) -> Path:
    """A dialerd.yaml plus campaign files in ``workdir``; returns the settings path.

    The campaign bodies may hold a trunk template and legal overrides (as
    :func:`sim_campaign` does, and as campaign models built in code do); they
    are written where an admin would put them: the template into
    dialerd.yaml's ``trunks`` (the file names it), the overrides into its
    ``legal_overrides``. The files the daemon reads are what production
    accepts."""
    cdir = workdir / "campaigns"
    cdir.mkdir(parents=True, exist_ok=True)
    trunks: dict[str, str] = {}
    overrides: dict[str, list[str]] = {}
    for name, body in campaigns.items():
        body = dict(body)
        trunk = body.get("trunk")
        if isinstance(trunk, str) and TRUNK_RE.fullmatch(trunk):
            key = next((k for k, t in trunks.items() if t == trunk), f"trunk{len(trunks) + 1}")
            trunks[key] = trunk
            body["trunk"] = key
        comp = body.get("compliance")
        if isinstance(comp, dict):
            comp = dict(comp)
            for over, fld in LEGAL_OVERRIDES.items():
                if comp.pop(fld, False):
                    overrides.setdefault(name, []).append(over)
            body["compliance"] = comp
        (cdir / f"{name}.yaml").write_text(yaml.safe_dump({"name": name, **body}))
    cfg: dict[str, Any] = {
        "ami": {
            "host": ami.host,
            "port": ami.port,
            "username": ami.username,
            "secret": ami.secret,
            "action_timeout_s": 10,
            "connect_timeout_s": 10,
        },
        "store": {"path": str(workdir / "dialerd.sqlite3")},
        "campaigns_dir": str(cdir),
        "log": {"format": "json", "level": "info"},
        "drain_timeout_s": 30,
        "tick_s": 0.1,
        "control_socket": str(workdir / "control.sock"),
        "trunks": trunks,
        "legal_overrides": overrides,
    }
    cfg.update(settings)
    path = workdir / "dialerd.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def sim_campaign(agents: list[str], **over: Any) -> dict[str, Any]:
    """A campaign dialing ``[sim-customers]`` with short, test-friendly timers."""
    body: dict[str, Any] = {
        "trunk": "Local/{number}@sim-customers",
        "caller_id": {"name": "Dialerd Demo", "number": "+442071234567"},
        "agents": agents,
        "dial_mode": "progressive",
        "max_lines": 20,
        "ring_timeout_s": 15,
        "wrap_up_s": 0.5,
        "safe_harbor_sound": "vm-goodbye",
        "default_region": "GB",
        "retry": {
            "busy": {"delay_s": 2, "max_attempts": 2},
            "no_answer": {"delay_s": 2, "max_attempts": 2},
            "congestion": {"delay_s": 1, "max_attempts": 2},
            "failed": {"delay_s": 0, "max_attempts": 1},
            "abandoned": {"delay_s": 2, "max_attempts": 2},
            "customer_hangup": {"delay_s": 2, "max_attempts": 2},
            "interrupted": {"delay_s": 2, "max_attempts": 3},
        },
        "compliance": sim_compliance(),
    }
    body.update(over)
    return body


def sim_compliance(**over: Any) -> dict[str, Any]:
    """SANDBOX ONLY compliance block: the tests and the demo run at any hour
    against simulated numbers, so the legal window is widened to the whole
    day (``legal_window_override``, which :func:`write_config` moves into
    dialerd.yaml's ``legal_overrides``; check-config warns) and abandoned leads
    are retried after seconds (``agent_guaranteed`` lifts the 72-hour lock).
    The window and the lock have their own tests, which set them back."""
    body: dict[str, Any] = {
        "schedule": {"hours": {"daily": ["00:00-24:00"]}, "legal_window": "00:00-24:00"},
        "legal_window_override": True,
        "agent_guaranteed": True,
        "safe_harbor": {"seller": "Dialerd Demo", "callback_number": "+442071234567"},
    }
    body.update(over)
    return body


#: leads to seed: simulated numbers (written to a CSV with a name column), or
#: a CSV file of your own (imported as it is: extra columns, time zones...)
Leads = Sequence[str] | Path


async def seed_leads(
    settings: Settings, campaign: str, leads: Leads, *, region: str = "GB"
) -> ImportReport:
    """Import ``leads`` into ``campaign`` (created if missing) in the store of
    ``settings`` with the production importer; every row must be imported.

    Numbers are written to ``<campaign>-leads.csv`` next to the settings'
    store (a SQLite file) or campaigns directory (a PostgreSQL store); a
    :class:`~pathlib.Path` is imported unchanged."""
    if isinstance(leads, Path):
        path = leads
        with path.open(newline="") as f:
            expected = sum(1 for _ in csv.reader(f)) - 1  # the header
    else:
        # beside the SQLite file; with a PostgreSQL store, beside the campaigns
        base = settings.campaigns_dir.parent if settings.store.url else settings.store.path.parent
        path = write_csv(base / f"{campaign}-leads.csv", list(leads))
        expected = len(leads)
    async with store_session(settings) as store:
        await store.ensure_campaign(campaign)
        report = await import_csv(store, campaign, path, region)
    assert report.imported == expected and not report.errors, (expected, report)
    return report


async def seed_campaign(
    workdir: Path,
    ami: AmiCredentials,
    campaigns: Mapping[str, dict[str, Any]],
    leads: Mapping[str, Leads] | None = None,
    **settings: Any,
) -> Settings:
    """Everything a daemon under test needs before it starts: the settings
    file and campaign files in ``workdir`` (:func:`write_config`, extra
    ``settings`` passed on), and the ``leads`` of each campaign in its store
    (:func:`seed_leads`). Returns the loaded settings (``workdir /
    "dialerd.yaml"`` is their file, for a daemon run as a process)."""
    cfg = write_config(workdir, ami, dict(campaigns), **settings)
    loaded = load_settings(cfg)
    for name, these in (leads or {}).items():
        await seed_leads(loaded, name, these)
    return loaded


async def read_attempts(settings: Settings, campaign: str | None = None) -> list[StoredAttempt]:
    """The attempts in the store of ``settings`` (read through a session of
    its own, as another process would see them)."""
    async with store_session(settings) as store:
        return await store.list_attempts(campaign)


async def read_leads(settings: Settings, campaign: str) -> list[StoredLead]:
    """The leads of ``campaign`` in the store of ``settings``."""
    async with store_session(settings) as store:
        return await store.list_leads(campaign)


async def login_agents(rec: AmiRecorder, agent_ids: list[str], timeout: float = 15.0) -> None:
    """Put simulated agents in their rooms (sent together, not one by one)
    and wait until Asterisk reports each one in its room."""
    for aid in agent_ids:
        rec._manager.send_action(
            {
                "Action": "Originate",
                "Channel": f"Local/{aid}@sim-agents",
                "Application": "Wait",
                "Data": "86400",
                "Async": "true",
            }
        )
    for aid in agent_ids:
        await rec.wait_for(
            lambda s, a=aid: (
                s.get("Event") == "ConfbridgeJoin" and s.get("Conference") == f"agent-{a}"
            ),
            timeout,
        )


async def logout_agent(rec: AmiRecorder, agent_id: str) -> None:
    """Hang up the agent's channel in their room (as a softphone hanging up)."""
    joins = rec.named("ConfbridgeJoin", Conference=f"agent-{agent_id}")
    if joins:
        await rec.action({"Action": "Hangup", "Channel": joins[0].get("Channel")})
        await asyncio.sleep(0)


@asynccontextmanager
async def running(daemon: Daemon, started_s: float | None = None) -> AsyncIterator[Daemon]:
    """The daemon running for the block (waited for until started, if
    ``started_s``), then stopped as systemd would stop it: the block passes
    only if the daemon drains and exits with status 0 within 60 s."""
    task = asyncio.create_task(daemon.run())
    try:
        if started_s is not None:
            await asyncio.wait_for(daemon.started.wait(), started_s)
        yield daemon
    finally:
        daemon.request_stop()
        assert await asyncio.wait_for(task, 60) == 0
