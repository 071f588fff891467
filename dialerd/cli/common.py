"""What the ``dialerd`` commands share, kept here so that each command's body
is only its own logic and every command fails the same way.

Three things would otherwise be repeated in each command: reading
``dialerd.yaml`` (a bad file is reported line by line and exits 1), reaching
the store (always through :func:`dialerd.store.store_session`, the one way
in, so a second backend changes nothing here) and asking the running daemon
over its control socket. A command that cannot go on raises :class:`Exit`;
:func:`dialerd.cli.main` prints its lines to stderr and returns its status.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from dialerd.campaign.loader import ConfigError
from dialerd.settings import Settings, load_settings
from dialerd.store import store_session
from dialerd.store.api import StoreApi

DEFAULT_CONFIG = "/etc/dialerd/dialerd.yaml"

Handler = Callable[[argparse.Namespace], int]
SettingsHandler = Callable[[argparse.Namespace, Settings], int]
T = TypeVar("T")


class Exit(Exception):
    """Stop the command: ``lines`` go to stderr, ``status`` is the exit code."""

    def __init__(self, status: int, *lines: str) -> None:
        super().__init__(*lines)
        self.status = status
        self.lines = lines

    def report(self) -> int:
        for line in self.lines:
            err(line)
        return self.status


def err(line: str) -> None:
    """Diagnostics go to stderr; stdout holds only results."""
    print(line, file=sys.stderr)


# ---------------------------------------------------------------- settings


def default_config() -> str:
    return os.environ.get("DIALERD_CONFIG") or DEFAULT_CONFIG


def config_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        "-c",
        default=default_config(),
        metavar="PATH",
        help="dialerd.yaml (default: $DIALERD_CONFIG or %(default)s)",
    )


def settings_of(args: argparse.Namespace) -> Settings:
    """``--config`` loaded; every error in it on stderr and exit 1 if bad."""
    try:
        return load_settings(args.config)
    except ConfigError as exc:
        raise Exit(1, *(str(e) for e in exc.flatten())) from None


def with_settings(fn: SettingsHandler) -> Handler:
    """A command that needs ``dialerd.yaml``: ``fn(args, settings)``."""

    @functools.wraps(fn)
    def handler(args: argparse.Namespace) -> int:
        return fn(args, settings_of(args))

    return handler


# ---------------------------------------------------------------- store


def in_store(settings: Settings, fn: Callable[[StoreApi], Awaitable[T]]) -> T:
    """``fn(store)`` run to completion, the store open for it alone."""

    async def session() -> T:
        async with store_session(settings) as store:
            return await fn(store)

    return asyncio.run(session())


# ---------------------------------------------------------------- control socket


def socket_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--socket",
        default=None,
        metavar="PATH",
        help="the daemon's control socket (default: control_socket of dialerd.yaml)",
    )


def control_socket(settings: Settings) -> str:
    from dialerd.control import DEFAULT_SOCKET

    return str(getattr(settings, "control_socket", None) or DEFAULT_SOCKET)


def socket_path(args: argparse.Namespace) -> str:
    """``--socket``, else the one ``dialerd.yaml`` names (read only then)."""
    if getattr(args, "socket", None):
        return str(args.socket)
    return control_socket(settings_of(args))


def ask(path: str, request: dict[str, Any]) -> dict[str, Any]:
    """The daemon's reply; exit 1 saying why when it cannot be asked."""
    from dialerd.control import ControlError, control_request

    try:
        return control_request(path, request)
    except ControlError as exc:
        raise Exit(1, str(exc)) from None


# ---------------------------------------------------------------- output


def console() -> Any:
    """Rich console on stdout; not a terminal (a pipe, a file): wide enough
    that no column is wrapped or cut."""
    from rich.console import Console

    return Console() if sys.stdout.isatty() else Console(width=240)
