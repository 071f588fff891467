"""Phone login: the daemon asks for the PIN itself, over FastAGI.

The login dialplan runs ``AGI(agi://${DIALER_AGI}/login,<agent id>)``; this
module answers. It asks for the agent id when none was dialed, checks the
limits (:mod:`dialerd.login_limits`, counters in the store), asks for the
PIN with ``GET DATA`` (the digits travel only on the AGI socket), checks it
against the agent's scrypt hash, records every wrong one in the store
*before* saying so, and ends with ``DIALER_ACK`` = ``ok`` (the dialplan
puts the agent in their room) or ``no`` (it says goodbye). If the daemon is
down the AGI fails and the dialplan tells the agent so.

Never logged, published, recorded or sent to AMI: the digits typed for the
PIN. The agent id and the phone (its channel name without the call's
suffix, as Asterisk reports it, not the spoofable caller id) are.
"""

from __future__ import annotations

import asyncio
import hmac
import re
import sqlite3
from typing import TYPE_CHECKING

import structlog

from dialerd import login_limits as limits
from dialerd.agents import AGENT_RE, MAX_PIN_LEN, AgentsFile, dummy_hash, verify_pin
from dialerd.core import commands as cmd
from dialerd.core.models import AgentStatus
from dialerd.daemon.agi import AgiSession
from dialerd.daemon.executor import CommandExecutor
from dialerd.daemon.shell import Shell
from dialerd.store.api import StoreError

if TYPE_CHECKING:
    from collections.abc import Callable

log = structlog.get_logger("dialerd")

#: PIN tries per call (each wrong one: "incorrect, enter your password")
TRIES = 3
#: ms GET DATA waits for the keys
PIN_TIMEOUT_MS = 10_000
#: scrypt checks at once (each ~50 ms of CPU and 16 MiB)
HASHING_AT_ONCE = 2

PROMPT_ID = "agent-user"
PROMPT_PIN = "agent-pass"
PROMPT_AGAIN = "agent-incorrect"
PROMPT_OK = "agent-loginok"
PROMPT_LATER = "please-try-call-later"
PROMPT_ALREADY_ON = "agent-alreadyon"

_CALL_SUFFIX = re.compile(r"-[0-9a-f]{8}(;[12])?$")
_STORE_ERRORS = (StoreError, sqlite3.Error, OSError)


def phone_of(channel: str) -> str:
    """``PJSIP/7001-0000000a`` -> ``PJSIP/7001``: the device, not the call."""
    return _CALL_SUFFIX.sub("", channel)


class PhoneLogin:
    """The ``login`` FastAGI script, one session per login call (served by
    :class:`dialerd.daemon.agiserver.AgiServer`)."""

    def __init__(
        self, shell: Shell, executor: CommandExecutor, agents: Callable[[], AgentsFile]
    ) -> None:
        self.shell = shell
        self.executor = executor
        self.agents = agents
        #: counters are read, judged and written under this lock, so two
        #: calls cannot both use the same free try
        self._lock = asyncio.Lock()
        self._hashing = asyncio.Semaphore(HASHING_AT_ONCE)
        #: phones with a login in progress: one at a time per phone
        self._busy: set[str] = set()

    # --------------------------------------------------------------- session

    async def session(self, agi: AgiSession) -> None:
        if agi.script != "login":
            log.warning("agi.unknown_script", script=agi.script)
            return
        phone = phone_of(agi.channel)
        if not phone or phone in self._busy:
            # a second login from the same phone at once: no parallel guesses
            await agi.stream_file(PROMPT_LATER)
            await agi.set_variable("DIALER_ACK", "no")
            return
        self._busy.add(phone)
        try:
            ack = await self._login(agi, phone)
        except _STORE_ERRORS as exc:
            # fail closed: a try that cannot be counted is not made
            log.error("agent.login_store_error", phone=phone, error=type(exc).__name__)
            await agi.stream_file(PROMPT_LATER)
            ack = "no"
        finally:
            self._busy.discard(phone)
        await agi.set_variable("DIALER_ACK", ack)

    async def _login(self, agi: AgiSession, phone: str) -> str:
        agent = agi.arg(1)
        if not agent:
            agent = await agi.get_data(PROMPT_ID, PIN_TIMEOUT_MS, 10)
            if AGENT_RE.fullmatch(agent):
                await agi.set_variable("DIALER_AGENT", agent)
        if not AGENT_RE.fullmatch(agent):
            await agi.stream_file(PROMPT_AGAIN)
            return "no"
        store = self.shell.need_store()
        for attempt in range(TRIES):
            async with self._lock:
                state = await self._state(phone, agent)
            wait = limits.check(state, self.shell.clock())
            if wait is not None:
                retry_in = round(wait.until - self.shell.clock())
                log.warning(
                    "agent.login_delayed",
                    agent=agent,
                    phone=phone,
                    limit=wait.scope.value,
                    retry_in_s=retry_in,
                )
                self._record(agent, f"delayed ({wait.scope.value} limit, {retry_in} s)", False)
                await agi.stream_file(PROMPT_LATER)
                return "no"
            typed = await agi.get_data(
                PROMPT_PIN if attempt == 0 else PROMPT_AGAIN, PIN_TIMEOUT_MS, MAX_PIN_LEN
            )
            if not typed:
                continue  # nothing typed: no guess, nothing counted
            known, good = await self._verify(agent, typed)
            del typed
            if good:
                return await self._succeeded(agi, agent, phone, state)
            async with self._lock:
                state = await self._state(phone, agent)
                failed = limits.failure(state, self.shell.clock())
                # counted before the caller hears the verdict: hanging up
                # on the "incorrect" prompt does not save a try
                await store.save_login_counters(
                    [(s.value, k, c.level, c.last_at) for s, k, c in failed.counters]
                )
            verdict = "wrong_pin" if known else "unknown_agent"
            log.info("agent.login", agent=agent, phone=phone, verdict=verdict, ok=False)
            self._failed(agent, phone, verdict, failed)
        return "no"

    async def _state(self, phone: str, agent: str) -> limits.LoginState:
        store = self.shell.need_store()
        now = self.shell.clock()
        known = await store.known_phone(agent, phone, now - limits.KNOWN_PHONE_S)
        probe = limits.LoginState(phone, agent, known)
        keys = [(s.value, probe.key(s)) for s in limits.Scope]
        rows = await store.login_counters(keys)
        counters = tuple(
            (s, limits.Counter(*rows[(s.value, probe.key(s))]))
            for s in limits.Scope
            if (s.value, probe.key(s)) in rows
        )
        return limits.LoginState(phone, agent, known, counters)

    async def _verify(self, agent: str, typed: str) -> tuple[bool, bool]:
        """(the agent exists with a PIN, the PIN is right). Always one
        scrypt check, so an unknown id answers as slowly as a known one."""
        entry = self.agents().agents.get(agent)
        stored = await self.shell.need_store().pin_hash(agent) if entry is not None else None
        clear = entry.pin if entry is not None and stored is None else None
        async with self._hashing:
            good = await asyncio.to_thread(verify_pin, typed, stored or dummy_hash())
        if clear is not None:  # a PIN in clear in the file (deprecated)
            good = hmac.compare_digest(clear.encode(), typed.encode())
        known = entry is not None and (stored is not None or clear is not None)
        return known, good and known

    async def _succeeded(
        self, agi: AgiSession, agent: str, phone: str, state: limits.LoginState
    ) -> str:
        sh = self.shell
        core_agent = sh.core.agents.get(agent)
        if core_agent is not None and core_agent.channel and core_agent.channel != agi.channel:
            if core_agent.status in (AgentStatus.TALKING, AgentStatus.RESERVED):
                log.info("agent.login", agent=agent, phone=phone, verdict="already_on", ok=False)
                self._record(agent, "already_on", False)
                await agi.stream_file(PROMPT_ALREADY_ON)
                return "no"
            self.executor.hangup_channel(core_agent.channel)  # the new phone takes over
        await sh.need_store().login_succeeded(
            agent, phone, sh.clock(), [(s.value, k) for s, k in limits.success(state)]
        )
        log.info("agent.login", agent=agent, phone=phone, verdict="ok", ok=True)
        self._record(agent, "ok", True)
        await agi.stream_file(PROMPT_OK)
        return "ok"

    def _record(self, agent: str, detail: str, ok: bool) -> None:
        sh = self.shell
        a = sh.core.agents.get(agent)
        campaign = a.campaign if a is not None else None
        self.executor.execute(cmd.AgentAction(agent, campaign, "login", detail, ok, sh.clock()))

    def _failed(self, agent: str, phone: str, verdict: str, failed: limits.Failed) -> None:
        sh = self.shell
        self._record(agent, verdict, False)
        if sh.metrics is not None:
            sh.metrics.login_failures.labels(verdict).inc()
        if failed.burst:
            log.error(
                "agent.login_burst",
                failures=failed.overall,
                last_phone=phone,
                last_agent=agent,
                hint="many wrong PINs: see `dialerd agents limits`",
            )
            if sh.metrics is not None:
                sh.metrics.login_bursts.inc()
            if sh.mqtt is not None:
                sh.mqtt.event("login_burst", failures=failed.overall, phone=phone, agent=agent)
