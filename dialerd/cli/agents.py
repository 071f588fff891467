"""``dialerd agents``: the agents' PINs and the wrong-PIN limits.

``set-pin`` stores a salted scrypt hash in the store (the running daemon
uses it at the next login, no reload); the PIN is typed twice without echo,
or read from stdin for scripts (``--stdin``), and never printed. ``limits``
shows the wrong-PIN counters; ``unlock`` clears them (an agent kept out by
someone else's guesses, a phone after a forgotten PIN).
"""

from __future__ import annotations

import argparse
import getpass
import sys
import time
from typing import Any

from dialerd import login_limits as limits
from dialerd.agents import (
    AGENT_RE,
    MAX_PIN_LEN,
    MIN_PIN_LEN,
    AgentsFile,
    file_pin_findings,
    hash_pin,
    load_agents_file,
    pin_problem,
)
from dialerd.campaign.loader import ConfigError, ConfigErrors
from dialerd.cli.common import Exit, config_arg, err, in_store, with_settings
from dialerd.settings import Settings
from dialerd.store.api import StoreApi


def add_parser(subparsers: Any) -> None:
    agents = subparsers.add_parser("agents", help="agents' PINs and the wrong-PIN limits")
    sub = agents.add_subparsers(dest="agents_command", metavar="ACTION", required=True)

    p = sub.add_parser("set-pin", help="set an agent's PIN (stored hashed; asked twice)")
    p.add_argument("agent", metavar="AGENT", help="the agent id (2-10 digits)")
    p.add_argument(
        "--stdin", action="store_true", help="read the PIN from stdin (one line), for scripts"
    )
    config_arg(p)
    p.set_defaults(func=cmd_set_pin)

    p = sub.add_parser("limits", help="the wrong-PIN counters (phones, agent ids, overall)")
    config_arg(p)
    p.set_defaults(func=cmd_limits)

    p = sub.add_parser("unlock", help="clear wrong-PIN counters")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--agent", help="the agent id's counter")
    who.add_argument("--phone", help="a phone's counter (as `limits` shows it: PJSIP/7001)")
    who.add_argument("--all", action="store_true", help="every counter")
    config_arg(p)
    p.set_defaults(func=cmd_unlock)


def _read_pin(from_stdin: bool) -> str:
    if from_stdin or not sys.stdin.isatty():
        return sys.stdin.readline().strip()
    first = getpass.getpass("New PIN: ")
    again = getpass.getpass("Again: ")
    if first != again:
        raise Exit(1, "the two PINs differ; nothing changed")
    return first.strip()


def _agents_file(settings: Settings) -> AgentsFile | None:
    if settings.agents_file is None:
        return None
    try:
        return load_agents_file(settings.agents_file)
    except (ConfigError, ConfigErrors, OSError) as exc:
        raise Exit(1, str(exc)) from None


@with_settings
def cmd_set_pin(args: argparse.Namespace, settings: Settings) -> int:
    agent = args.agent
    if not AGENT_RE.fullmatch(agent):
        raise Exit(1, f"agent id {agent!r} must be 2-10 digits")
    agents = _agents_file(settings)
    pin = _read_pin(args.stdin)
    if (why := pin_problem(pin)) is not None:
        raise Exit(1, f"PIN refused: {why} ({MIN_PIN_LEN}-{MAX_PIN_LEN} digits); nothing changed")
    encoded = hash_pin(pin)
    del pin

    async def apply(store: StoreApi) -> None:
        await store.set_pin_hash(agent, encoded, time.time())

    in_store(settings, apply)
    print(f"agent {agent}: PIN set (hashed in the store); it works at the next login")
    if agents is None:
        err("warning: agents_file is not set in dialerd.yaml: nobody can log in by phone")
    elif agent not in agents.agents:
        err(f"{settings.agents_file}: warning: agent {agent} is not listed: add it to log in")
    elif agents.agents[agent].pin is not None:
        err(f"{settings.agents_file}: agent {agent}: delete its pin line (now ignored)")
    return 0


@with_settings
def cmd_limits(args: argparse.Namespace, settings: Settings) -> int:
    rows = in_store(settings, lambda s: s.all_login_counters())
    now = time.time()
    if not rows:
        print("no wrong-PIN counters")
        return 0
    print(f"{'scope':6} {'key':28} {'level':>6} {'last failure':20} allowed")
    for scope, key, level, last_at in rows:
        lim = limits.LIMITS[limits.Scope(scope)]
        c = limits.Counter(level, last_at)
        until = c.allowed_at(lim)
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(last_at))
        allowed = "now" if until <= now else f"in {round(until - now)} s"
        print(f"{scope:6} {key:28} {c.now_level(lim, now):6.1f} {when:20} {allowed}")
    return 0


@with_settings
def cmd_unlock(args: argparse.Namespace, settings: Settings) -> int:
    async def apply(store: StoreApi) -> int:
        if args.all:
            keys = [(s, k) for s, k, _l, _t in await store.all_login_counters()]
        elif args.agent:
            keys = [(limits.Scope.AGENT.value, args.agent)]
        else:
            keys = [(limits.Scope.PHONE.value, args.phone)]
        return await store.clear_login_counters(keys)

    n = in_store(settings, apply)
    print(f"{n} counter(s) cleared")
    return 0


def agents_findings(
    settings: Settings, campaign_agents: set[str]
) -> tuple[list[str], list[tuple[str, str]], bool]:
    """For ``check-config``: (lines for stdout, (level, message) findings
    about the agents file, the file failed to load: then the one message is
    the loader's, naming the file and line). Reads the store's hashed PINs when the store
    file exists (it is never created here)."""
    path = settings.agents_file
    if path is None:
        return [], [], False
    try:
        agents = load_agents_file(path)
    except (ConfigError, ConfigErrors, OSError) as exc:
        return [], [("error", str(exc))], True
    hashed: set[str] = set()
    store_path = settings.store.path
    if settings.store.url is not None or (str(store_path) != ":memory:" and store_path.exists()):
        hashed = set(in_store(settings, lambda s: s.pin_agents()))
    with_pin = {a for a, e in agents.agents.items() if e.pin is not None} | hashed
    n_hashed = len(hashed & set(agents.agents))
    lines = [
        f"{path}: OK ({len(agents.agents)} agents, {n_hashed} with a hashed PIN,"
        f" {len(with_pin & set(agents.agents)) - n_hashed} with a PIN in clear)"
    ]
    findings = file_pin_findings(agents, hashed)
    for a in sorted(campaign_agents - set(agents.agents)):
        findings.append(("warning", f"agent {a} is in a campaign but not in this file"))
    # no PIN yet is a state of the store, not a fault of the file (a fresh
    # install has none): said on stdout, with the command that sets one
    no_pin = sorted((campaign_agents & set(agents.agents)) - with_pin)
    if no_pin:
        lines.append(
            f"{path}: note: {len(no_pin)} agent(s) of a campaign have no PIN yet, so cannot"
            f" log in by phone: {', '.join(no_pin)} (dialerd agents set-pin <id>)"
        )
    return lines, findings, False
