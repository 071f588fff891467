"""Agent PINs: hashing, the wrong-PIN limits (pure, then through the
daemon's FastAGI login against a real store, restarts included), the burst
alert, ``dialerd agents set-pin`` and what ``check-config`` says.

The login tests play Asterisk's side of FastAGI themselves (a socket that
sends the ``agi_*`` block and answers each command), so they run anywhere;
tests/integration/test_pin_secrecy.py does the same with a real Asterisk
and a SIP phone.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from collections.abc import AsyncIterator, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import structlog
from hypothesis import given, settings
from hypothesis import strategies as st

from dialerd import login_limits as L
from dialerd.agents import (
    EXAMPLE_PINS,
    AgentsFile,
    file_pin_findings,
    hash_pin,
    pin_problem,
    verify_pin,
)
from dialerd.cli import main
from dialerd.daemon.agiserver import AgiServer
from dialerd.daemon.executor import CommandExecutor
from dialerd.daemon.login import PhoneLogin, phone_of
from dialerd.daemon.shell import Shell
from dialerd.daemon.tasks import background, settle
from dialerd.settings import load_settings
from dialerd.store import open_store
from dialerd.store.api import StoreApi

PIN = "73914862"
WRONG = "58203917"
FAST_N = 2**4  # hashing tests: the format and the compare, not the cost

# ------------------------------------------------------------------ hashing


@settings(max_examples=40, deadline=None)
@given(st.text("0123456789", min_size=4, max_size=10), st.text("0123456789", max_size=10))
def test_a_pin_verifies_against_its_own_hash_and_not_another(pin: str, other: str) -> None:
    h = hash_pin(pin, n=FAST_N)
    assert verify_pin(pin, h)
    assert verify_pin(other, h) is (other == pin)
    assert pin not in h.split("$")[1:4], "the hash does not hold the PIN"


def test_hashes_are_salted_and_malformed_ones_verify_nothing() -> None:
    a, b = hash_pin(PIN, n=FAST_N), hash_pin(PIN, n=FAST_N)
    assert a != b and verify_pin(PIN, a) and verify_pin(PIN, b)
    assert a.startswith(f"scrypt${FAST_N}$8$1$")
    for bad in (
        "",
        PIN,
        "scrypt$x$8$1$AA==$AA==",
        "md5$1$1$1$AA==$AA==",
        a + "$x",
        "scrypt$2$8$1$!$!",
    ):
        assert verify_pin(PIN, bad) is False


def test_pin_problems_name_no_digits() -> None:
    assert pin_problem(PIN) is None
    for bad in ("12345", "12345678901", "11111111", "123456", "987654", "12a456", "5305"):
        why = pin_problem(bad)
        assert why is not None and bad not in why, (bad, why)
    assert pin_problem("5305", min_len=4) == "this PIN was published as an example"


# ------------------------------------------------------------- the limiter


def _state(known: bool = False, **counters: L.Counter) -> L.LoginState:
    return L.LoginState(
        "PJSIP/7001", "1001", known, tuple((L.Scope(k), c) for k, c in counters.items())
    )


def _fail(state: L.LoginState, now: float) -> L.LoginState:
    f = L.failure(state, now)
    return L.LoginState(
        state.phone, state.agent_id, state.known, tuple((s, c) for s, _k, c in f.counters)
    )


def test_phone_limit_three_free_then_delays_double_up_to_an_hour() -> None:
    s, now, waits = _state(), 1000.0, []
    for _ in range(14):
        assert L.check(s, now) is None
        s = _fail(s, now)
        w = L.check(s, now)
        waits.append(0.0 if w is None else w.until - now)
        now += waits[-1]
    assert waits[:3] == [0, 0, 0]
    assert waits[3:10] == [30, 60, 120, 240, 480, 960, 1920]
    assert max(waits) == 3600
    w = L.check(s, now - 1)
    assert w is not None and w.scope is L.Scope.PHONE


def test_a_phone_gets_a_few_dozen_guesses_a_day_not_thousands() -> None:
    """The issue's attacker: as fast as allowed, from one phone, all day."""
    s, now, guesses = _state(), 0.0, 0
    while now < 86400:
        w = L.check(s, now)
        if w is not None:
            now = w.until
            continue
        s, guesses = _fail(s, now), guesses + 1
    assert guesses < 40, guesses


def test_agent_and_overall_limits_spare_the_agents_own_phone() -> None:
    hot = L.Counter(level=30, last_at=1000)
    s = _state(agent=hot, all=hot)
    w = L.check(s, 1001)
    assert w is not None and w.scope is L.Scope.AGENT
    assert L.check(_state(known=True, agent=hot, all=hot), 1001) is None
    # a known phone's failure still counts overall (bursts), not against the id
    f = L.failure(_state(known=True), 5)
    assert {s for s, _k, _c in f.counters} == {L.Scope.PHONE, L.Scope.ALL}


def test_counters_drain_with_time() -> None:
    c = L.Counter(level=6, last_at=0)
    lim = L.LIMITS[L.Scope.PHONE]
    assert c.now_level(lim, 3600 * 2) == pytest.approx(4)
    assert c.now_level(lim, 3600 * 10) == 0


def test_burst_is_reported_at_ten_overall_failures_then_at_each_doubling() -> None:
    s, bursts = _state(), []
    for i in range(45):
        f = L.failure(s, 100 + i * 0.1)
        if f.burst:
            bursts.append(f.overall)
        s = L.LoginState(s.phone, s.agent_id, s.known, tuple((sc, c) for sc, _k, c in f.counters))
    assert bursts == [10, 20, 40]


# ---------------------------------------------- the login, over FastAGI


@dataclass
class Phone:
    """Asterisk's side of one login call: what it is asked, what it answers."""

    port: int
    channel: str = "PJSIP/7001-00000001"
    agent: str = "1001"
    typed: list[str] = field(default_factory=list)
    asked: list[str] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)

    async def call(self) -> str:
        r, w = await asyncio.open_connection("127.0.0.1", self.port)
        env = {
            "agi_network": "yes",
            "agi_network_script": "login",
            "agi_channel": self.channel,
            "agi_callerid": "1001",  # spoofable: must not be what is limited
            "agi_arg_1": self.agent,
        }
        w.write("".join(f"{k}: {v}\n" for k, v in env.items()).encode() + b"\n")
        while line := (await r.readline()).decode().strip():
            self.asked.append(line)
            words = line.split()
            if line.startswith("GET DATA"):
                reply = f"200 result={self.typed.pop(0) if self.typed else ''}"
            elif line.startswith("SET VARIABLE"):
                self.variables[words[2]] = words[3]
                reply = "200 result=1"
            else:
                reply = "200 result=0 endpos=1000"
            w.write((reply + "\n").encode())
        w.close()
        return self.variables.get("DIALER_ACK", "")

    def prompts(self) -> list[str]:
        return [a.split()[2] for a in self.asked if a.startswith(("GET DATA", "STREAM FILE"))]


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Rig:
    shell: Shell
    login: PhoneLogin
    store: StoreApi
    port: int
    logs: list[MutableMapping[str, Any]]

    def phone(self, typed: list[str], **kw: Any) -> Phone:
        return Phone(self.port, typed=list(typed), **kw)


def _settings(tmp_path: Path, agents: str) -> Any:
    (tmp_path / "agents.yaml").write_text(agents)
    cfg = tmp_path / "dialerd.yaml"
    cfg.write_text(
        "ami: {username: dialerd, secret: x}\n"
        f"store: {{path: {tmp_path / 's.db'}}}\n"
        f"campaigns_dir: {tmp_path}\n"
        "agents_file: agents.yaml\n"
        "agi: {port: 0}\n"
    )
    return load_settings(cfg)


@contextlib.asynccontextmanager
async def _rig(
    tmp_path: Path, clock: Clock, agents: str = '{agents: {"1001": {}}}'
) -> AsyncIterator[Rig]:
    """A daemon's login part: its shell, a real store, the AGI server."""
    from dialerd.agents import load_agents_file

    settings = _settings(tmp_path, agents)
    shell = Shell(settings, clock=clock)
    store = await open_store(settings)
    shell.store = store
    executor = CommandExecutor(shell)
    agents_file = load_agents_file(settings.agents_file)
    login = PhoneLogin(shell, executor, lambda: agents_file)
    server = AgiServer(shell, executor, {"login": login.session})
    with structlog.testing.capture_logs() as captured:
        async with contextlib.AsyncExitStack() as stack:
            # the store writer: agent actions are owed to it, as in the daemon
            await stack.enter_async_context(background(shell.writer.run(), "writer"))
            await server.start(stack)
            assert server.address is not None
            port = int(server.address.rsplit(":", 1)[1])
            try:
                yield Rig(shell, login, store, port, captured)
            finally:
                await settle(shell.store_tasks)
                await shell.writer.flush(5.0)
                await store.close()


async def _set_pin(store: StoreApi, pin: str = PIN, agent: str = "1001") -> None:
    await store.set_pin_hash(agent, hash_pin(pin), 0)


async def test_right_pin_logs_in_wrong_pin_asks_again_and_nothing_logs_the_digits(
    tmp_path: Path,
) -> None:
    clock = Clock()
    async with _rig(tmp_path, clock) as rig:
        await _set_pin(rig.store)
        p = rig.phone([WRONG, PIN])
        assert await p.call() == "ok"
        assert p.prompts() == ["agent-pass", "agent-incorrect", "agent-loginok"]
        await asyncio.sleep(0.05)
        actions = [(a[2], a[3], a[4]) for a in await rig.store.agent_actions("1001")]
        assert actions == [("login", "wrong_pin", False), ("login", "ok", True)]
        # the phone is now the agent's: known
        assert await rig.store.known_phone("1001", "PJSIP/7001", 0)
        # three wrong: the dialplan is told no (it says goodbye)
        p = rig.phone([WRONG, WRONG, WRONG])
        assert await p.call() == "no"
        assert p.prompts() == ["agent-pass", "agent-incorrect", "agent-incorrect"]
    text = json.dumps(rig.logs)
    assert PIN not in text and WRONG not in text
    assert any(e["event"] == "agent.login" and e["verdict"] == "wrong_pin" for e in rig.logs)


async def test_unknown_agent_sounds_like_a_wrong_pin(tmp_path: Path) -> None:
    clock = Clock()
    async with _rig(tmp_path, clock) as rig:
        p = rig.phone([PIN, PIN, PIN], agent="4242")
        assert await p.call() == "no"
        assert p.prompts() == ["agent-pass", "agent-incorrect", "agent-incorrect"]
        await asyncio.sleep(0.05)
        acts = await rig.store.agent_actions("4242")
        assert {a[3] for a in acts} == {"unknown_agent"}


async def test_the_per_phone_limit_grows_and_survives_a_restart(tmp_path: Path) -> None:
    clock = Clock()
    async with _rig(tmp_path, clock) as rig:
        await _set_pin(rig.store)
        p = rig.phone([WRONG, WRONG, WRONG])
        assert await p.call() == "no"  # 3 free failures
        p = rig.phone([WRONG])
        assert await p.call() == "no"
        # the 4th failure: 30 s to wait now, said at once (not asked again)
        assert p.prompts() == ["agent-pass", "please-try-call-later"]
        p = rig.phone([PIN])
        assert await p.call() == "no"
        assert p.prompts() == ["please-try-call-later"], "not even asked: the PIN is not tried"
    # a new daemon on the same store: the wait is still there
    async with _rig(tmp_path, clock) as rig:
        p = rig.phone([PIN])
        assert await p.call() == "no" and p.prompts() == ["please-try-call-later"]
        delayed = [e for e in rig.logs if e["event"] == "agent.login_delayed"]
        assert delayed and delayed[-1]["limit"] == "phone" and delayed[-1]["retry_in_s"] == 30
        # another phone is not slowed by this one
        other = rig.phone([PIN], channel="PJSIP/7002-00000009")
        assert await other.call() == "ok"
        clock.now += 31
        p = rig.phone([WRONG])
        assert await p.call() == "no"
        clock.now += 31  # the 5th failure doubled the wait: 60 s
        p = rig.phone([PIN])
        assert await p.call() == "no" and p.prompts() == ["please-try-call-later"]
        clock.now += 30
        p = rig.phone([PIN])
        assert await p.call() == "ok"
        # a success resets the phone's counter
        rows = {(s, k) for s, k, _l, _t in await rig.store.all_login_counters()}
        assert ("phone", "PJSIP/7001") not in rows


async def test_many_phones_against_one_agent_delay_that_id_but_not_the_agents_desk(
    tmp_path: Path,
) -> None:
    clock = Clock()
    agents = '{agents: {"1001": {}, "1002": {}}}'
    async with _rig(tmp_path, clock, agents) as rig:
        await _set_pin(rig.store)
        # the agent logged in at their desk once: that phone is theirs
        assert await rig.phone([PIN]).call() == "ok"
        for n in range(6):  # six other phones, one wrong PIN each, against 1001
            ph = rig.phone([WRONG], channel=f"PJSIP/{7100 + n}-0000000{n}")
            assert await ph.call() == "no"
        stranger = rig.phone([PIN], channel="PJSIP/7200-00000001")
        assert await stranger.call() == "no"
        assert stranger.prompts() == ["please-try-call-later"]
        delayed = [e for e in rig.logs if e["event"] == "agent.login_delayed"]
        assert delayed[-1]["limit"] == "agent"
        # the agent at their own desk still gets in: no denial of service
        assert await rig.phone([PIN]).call() == "ok"


async def test_overall_limit_and_burst_alert_on_log_metrics_and_mqtt(tmp_path: Path) -> None:
    clock = Clock()
    ids = [str(2000 + i) for i in range(30)]
    agents = "{agents: {" + ", ".join(f'"{a}": {{}}' for a in ids) + "}}"
    async with _rig(tmp_path, clock, agents) as rig:
        from dialerd.metrics import Metrics

        rig.shell.metrics = Metrics()
        events: list[tuple[str, dict[str, Any]]] = []

        class FakeMqtt:
            def event(self, kind: str, **fields: Any) -> None:
                events.append((kind, fields))

        rig.shell.mqtt = FakeMqtt()  # type: ignore[assignment]
        # 21 phones, one wrong PIN each, each against another agent id
        for n in range(21):
            ph = rig.phone([WRONG], channel=f"PJSIP/{7300 + n}-0000000{n % 10}", agent=ids[n])
            assert await ph.call() == "no"
        bursts = [e for e in rig.logs if e["event"] == "agent.login_burst"]
        assert len(bursts) == 2 and bursts[0]["log_level"] == "error"
        assert [e[0] for e in events if e[0] == "login_burst"] == ["login_burst"] * 2
        reg = rig.shell.metrics.registry
        assert reg.get_sample_value("dialerd_login_bursts_total") == 2
        assert (
            reg.get_sample_value("dialerd_login_failures_total", {"reason": "unknown_agent"}) == 21
        )
        # past 20 overall: a new phone on a new id waits, the overall limit
        ph = rig.phone([WRONG], channel="PJSIP/7999-00000001", agent=ids[25])
        assert await ph.call() == "no" and ph.prompts() == ["please-try-call-later"]
        assert [e for e in rig.logs if e["event"] == "agent.login_delayed"][-1]["limit"] == "all"
        clock.now += 5
        assert await ph.call() == "no" and "agent-pass" in ph.prompts()


async def test_two_calls_at_once_from_one_phone_do_not_both_guess(tmp_path: Path) -> None:
    clock = Clock()
    async with _rig(tmp_path, clock) as rig:
        await _set_pin(rig.store)
        slow = rig.phone([])  # types nothing for a while: holds the phone's slot

        async def hold() -> None:
            r, w = await asyncio.open_connection("127.0.0.1", rig.port)
            w.write(
                b"agi_network_script: login\nagi_channel: PJSIP/7001-000000aa\nagi_arg_1: 1001\n\n"
            )
            await r.readline()  # GET DATA asked: now sit on it
            await asyncio.sleep(0.5)
            w.close()

        task = asyncio.create_task(hold())
        await asyncio.sleep(0.2)
        assert await slow.call() == "no" and slow.prompts() == ["please-try-call-later"]
        await task


async def test_a_store_that_cannot_count_refuses_the_try(tmp_path: Path) -> None:
    clock = Clock()
    async with _rig(tmp_path, clock) as rig:
        await _set_pin(rig.store)

        async def broken(*_a: Any) -> None:
            raise OSError("disk full")

        rig.store.save_login_counters = broken  # type: ignore[method-assign,assignment]
        p = rig.phone([WRONG, PIN])
        assert await p.call() == "no"
        assert p.prompts() == ["agent-pass", "please-try-call-later"]


def test_phone_is_the_device_not_the_call() -> None:
    assert phone_of("PJSIP/7001-0000000a") == "PJSIP/7001"
    assert phone_of("Local/8@dialer-agents-00000001;2") == "Local/8@dialer-agents"


async def test_a_login_user_event_checks_nothing(tmp_path: Path) -> None:
    """The old path (UserEvent DialerKey, Key: login, Data: <pin>) is gone:
    refused whatever it carries."""
    from dialerd.core import commands as cmd
    from dialerd.core import events as ev
    from dialerd.daemon import Daemon

    settings = _settings(tmp_path, '{agents: {"1001": {pin: "730125"}}}')
    seen: list[cmd.Command] = []
    d = Daemon(settings, on_command=seen.append)
    d.store = await open_store(settings)
    try:
        out = d.keys.intercept(ev.AgentKey(1.0, "1001", "login", "730125", "PJSIP/7001-1"))
        assert out is None
        acks = [c for c in seen if isinstance(c, cmd.AgentAck)]
        assert acks and acks[0].ok is False
        await d.store_tasks.cancel()
    finally:
        await d.store.close()


# ------------------------------------------------------ set-pin, check-config


def test_set_pin_from_stdin_hashes_and_refuses_weak_pins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = _settings(tmp_path, '{agents: {"1001": {pin: "730125"}}}')
    cfg = str(tmp_path / "dialerd.yaml")
    for weak in ("1234", "123456", "111111", "5305"):
        monkeypatch.setattr("sys.stdin", io.StringIO(weak + "\n"))
        assert main(["agents", "set-pin", "1001", "--stdin", "-c", cfg]) == 1
        assert weak not in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO(PIN + "\n"))
    assert main(["agents", "set-pin", "1001", "--stdin", "-c", cfg]) == 0
    out = capsys.readouterr()
    assert PIN not in out.out + out.err and "delete its pin line" in out.err

    async def stored() -> str | None:
        store = await open_store(settings)
        try:
            return await store.pin_hash("1001")
        finally:
            await store.close()

    h = asyncio.run(stored())
    assert h is not None and verify_pin(PIN, h) and PIN not in h


def test_set_pin_prompts_twice_without_echo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _settings(tmp_path, '{agents: {"1001": {}}}')
    cfg = str(tmp_path / "dialerd.yaml")

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stdin", Tty(""))
    answers = iter([PIN, WRONG])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    assert main(["agents", "set-pin", "1001", "-c", cfg]) == 1
    assert "differ" in capsys.readouterr().err
    answers = iter([PIN, PIN])
    assert main(["agents", "set-pin", "1001", "-c", cfg]) == 0


def test_check_config_refuses_example_pins_and_warns_on_short_and_clear_ones(
    shipped_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    conf = shipped_config
    agents = conf.parent / "agents.yaml"
    assert main(["check-config", "-c", str(conf)]) == 0
    out = capsys.readouterr()
    assert "19 agents, 0 with a hashed PIN, 0 with a PIN in clear" in out.out
    assert out.err == ""
    assert "19 agent(s) of a campaign have no PIN yet" in out.out and "set-pin <id>" in out.out
    text = agents.read_text()
    for pin, level in (("5305", "error"), ("123456", "error"), ("73015", "warning")):
        agents.write_text(text.replace("{name: Sales agent one}", f'{{name: A, pin: "{pin}"}}'))
        assert main(["check-config", "-c", str(conf)]) == (1 if level == "error" else 0)
        err = capsys.readouterr().err
        assert f"{level}: agent 1001" in err and "set-pin 1001" in err and pin not in err, err
    assert "shorter than 6 digits" in err and "PIN in clear" in err
    agents.write_text(text.replace("{name: Sales agent one}", '{name: A, pin: "730159"}'))
    assert main(["check-config", "-c", str(conf)]) == 0
    err = capsys.readouterr().err
    assert "warning: agent 1001: PIN in clear" in err and "shorter" not in err


def test_no_example_pin_ships_and_findings_cover_every_clear_pin() -> None:
    import yaml

    repo = Path(__file__).resolve().parents[2]
    shipped = yaml.safe_load((repo / "config" / "agents.yaml").read_text())["agents"]
    assert all("pin" not in e for e in shipped.values())
    f = file_pin_findings(
        AgentsFile.model_validate(
            {"agents": {"1001": {"pin": next(iter(EXAMPLE_PINS))}, "1002": {"pin": "730159"}}}
        ),
        hashed={"1002"},
    )
    assert [lvl for lvl, _m in f] == ["error", "warning"] and "ignored" in f[1][1]


def test_production_asterisk_config_keeps_pins_out_of_logs_and_ami() -> None:
    """What the verified facts demand of asterisk-conf/: res_agi loaded
    (after res_speech), no Read() of a PIN, no log file with the dtmf or
    debug level (each key pressed is logged there), no AMI user with the
    dtmf or all read class (DTMFEnd carries each digit)."""
    conf = Path(__file__).resolve().parents[2] / "asterisk-conf"
    mods = (conf / "modules.conf").read_text().splitlines()
    assert mods.index("load = res_speech.so") < mods.index("load = res_agi.so")
    ext = (conf / "extensions.conf").read_text()
    login = ext[ext.index("\n[dialer-login]\n") :]
    code = "\n".join(ln for ln in login.splitlines() if not ln.lstrip().startswith(";"))
    assert (
        "Read(" not in code and "UserEvent" not in code and "AGI(agi://${DIALER_AGI}/login" in code
    )
    agents_ctx = ext[ext.index("\n[dialer-agents]\n") : ext.index("\n[dialer-login]\n")]
    assert "Read(" not in "\n".join(ln for ln in agents_ctx.splitlines() if not ln.startswith(";"))
    for ln in (conf / "logger.conf").read_text().splitlines():
        if "=>" in ln and not ln.lstrip().startswith(";"):
            levels = ln.split("=>", 1)[1].replace(" ", "").split(",")
            assert "dtmf" not in levels and "debug" not in levels, ln
    for ln in (conf / "manager.conf").read_text().splitlines():
        if ln.replace(" ", "").startswith("read="):
            classes = ln.split("=", 1)[1].replace(" ", "").split(",")
            assert "dtmf" not in classes and "all" not in classes and "agi" not in classes, ln


def test_limits_lists_the_counters_and_unlock_clears_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = _settings(tmp_path, '{agents: {"1001": {}}}')
    cfg = str(tmp_path / "dialerd.yaml")

    async def seed() -> None:
        store = await open_store(settings)
        try:
            await store.save_login_counters(
                [("phone", "PJSIP/7001", 5.0, 4e9), ("agent", "1001", 2.0, 4e9)]
            )
        finally:
            await store.close()

    asyncio.run(seed())
    assert main(["agents", "limits", "-c", cfg]) == 0
    out = capsys.readouterr().out
    assert "PJSIP/7001" in out and "in " in out and "1001" in out
    assert main(["agents", "unlock", "--phone", "PJSIP/7001", "-c", cfg]) == 0
    assert "1 counter(s) cleared" in capsys.readouterr().out
    assert main(["agents", "unlock", "--all", "-c", cfg]) == 0
    assert "1 counter(s) cleared" in capsys.readouterr().out
    assert main(["agents", "limits", "-c", cfg]) == 0
    assert "no wrong-PIN counters" in capsys.readouterr().out
