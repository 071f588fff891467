"""Simulated callers through the carrier: one sipp UAC placing inbound calls.

The carrier of :mod:`dialerd.sandbox.carrier` answers the calls Asterisk
places; this is the same carrier calling in. sipp runs
``sipp/inbound_caller.xml`` from the carrier's address
(:data:`~dialerd.sandbox.asterisk.CARRIER_HOST`), which the sandbox's
``trunk-out`` identifies by address, so every INVITE is the trunk's and lands
in the production ``[dialer-inbound]``: the DID, the caller id and the keys
(RFC 4733, :mod:`dialerd.sandbox.dtmf`) are what a real carrier sends.

Why a report per call, read from sipp's ``<log>`` lines: a test checks what
the CALLER experienced (refused with which SIP status, answered, hung up on
by Asterisk or not, how long it lasted) beside what Asterisk's AMI events
say, so neither side is taken on the other's word.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from dialerd.sandbox import dtmf
from dialerd.sandbox.asterisk import CARRIER_HOST, tail_files
from dialerd.sandbox.carrier import CarrierError, free_udp_port

SCENARIO = Path(__file__).resolve().parent / "sipp" / "inbound_caller.xml"
#: what an -inf field may hold: no ';' (sipp's separator) and no line breaks
_FIELD = re.compile(r"^[^;\r\n]{1,64}$")
_LOG = re.compile(r"^call=(\d+) ms=(\d+) event=(\w+)(.*)$")


@dataclass(frozen=True, slots=True)
class CallReport:
    """What one simulated caller experienced."""

    call: int
    did: str
    caller: str
    #: the final SIP status of the INVITE (200 answered; 403 for cause 21 ...);
    #: None when sipp never saw one (the call failed: see ``SippCaller.errors``)
    status: int | None
    #: Asterisk sent BYE (the dialplan or an agent ended the call)
    bye_from_asterisk: bool
    #: the caller hung up after holding its time
    bye_from_caller: bool
    #: the keys were played
    pressed: bool
    #: seconds from the INVITE to the final answer
    setup_s: float | None
    #: seconds from the 200 OK to the end of the call (None: not answered)
    duration_s: float | None
    #: the call ran to the end of the scenario
    ended: bool


class SippCaller:
    """Places ``calls`` inbound calls to ``did`` from ``caller`` (the From
    user; ``name`` its display name, both sent as given: SIP escapes such as
    ``%2C`` included, which is how a hostile caller id is tested).

    ``hold_s``: how long each caller stays on after the answer before it
    hangs up itself (Asterisk may hang up first); ``keys`` (0-9 * #) are
    pressed ``keys_after_s`` after the answer. ``rate``: new calls per
    second. Async (a test awaits it while it plays the daemon's part on the
    same loop); sipp is stopped by its own pid only.
    """

    def __init__(
        self,
        sip_port: int,
        did: str,
        caller: str,
        *,
        name: str = "Caller",
        calls: int = 1,
        hold_s: float = 30.0,
        keys: str = "",
        keys_after_s: float = 1.0,
        rate: float = 10.0,
        workdir: Path | None = None,
        host: str = CARRIER_HOST,
        asterisk_host: str = "127.0.0.1",
        sipp: str | None = None,
    ) -> None:
        found = sipp or shutil.which("sipp")
        if found is None:
            raise CarrierError("sipp is not installed (apt-get install sip-tester)")
        if not (dtmf.RECORDINGS / "dtmf_2833_1.pcap").exists():
            raise CarrierError(f"no DTMF recordings in {dtmf.RECORDINGS} (sip-tester)")
        for what, value in (("did", did), ("caller", caller), ("name", name)):
            if not _FIELD.fullmatch(value):
                raise ValueError(f"{what} {value!r}: 1-64 characters, no ';' or line break")
        if calls < 1 or hold_s < 0 or keys_after_s < 0 or rate <= 0:
            raise ValueError("calls >= 1, hold_s >= 0, keys_after_s >= 0, rate > 0")
        self.sipp = found
        self.sip_port = sip_port
        self.did = did
        self.caller = caller
        self.name = name
        self.calls = calls
        self.hold_s = hold_s
        self.keys = keys
        self.keys_after_s = keys_after_s
        self.rate = rate
        self.host = host
        self.asterisk_host = asterisk_host
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="dialerd-caller-"))
        self.returncode: int | None = None
        self.output = ""
        self._proc: asyncio.subprocess.Process | None = None

    @property
    def log_file(self) -> Path:
        return self.workdir / "calls.log"

    @property
    def error_file(self) -> Path:
        return self.workdir / "errors.log"

    def errors(self) -> str:
        """What sipp reported as errors (unexpected messages, aborted calls)."""
        with contextlib.suppress(OSError):
            return self.error_file.read_text(errors="replace")
        return ""

    async def start(self) -> None:
        """Start sipp; the calls begin at once (``rate`` per second)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        inf = self.workdir / "calls.csv"
        inf.write_text("SEQUENTIAL\n" + f"{self.did};{self.caller};{self.name};\n" * self.calls)
        # sipp opens every play_pcap_audio file when it loads the scenario,
        # played or not: a caller without keys gets one it never plays
        dtmf.write_sequence(self.keys or "#", self.workdir / "keys.pcap")
        keys_ds = round(self.keys_after_s * 10) if self.keys else -1
        args = [
            self.sipp, f"{self.asterisk_host}:{self.sip_port}",
            "-sf", str(SCENARIO),
            "-inf", str(inf),
            "-m", str(self.calls), "-l", str(self.calls), "-r", str(self.rate),
            "-i", self.host, "-p", str(free_udp_port(self.host)),
            "-mi", self.host, "-mp", str(free_udp_port(self.host)),
            "-bind_local",
            "-set", "hold_ds", str(round(self.hold_s * 10)),
            "-set", "keys_ds", str(keys_ds),
            "-nostdin",
            "-trace_logs", "-log_file", str(self.log_file),
            "-trace_err", "-error_file", str(self.error_file),
        ]  # fmt: skip
        self._proc = await asyncio.create_subprocess_exec(
            *args,
            cwd=self.workdir,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )

    async def wait(self, timeout: float) -> list[CallReport]:
        """Wait for every call to end (sipp exits); one report per call.
        sipp still running after ``timeout`` is stopped and an error raised."""
        proc = self._proc
        if proc is None:
            raise CarrierError("start() first")
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), timeout)
        except TimeoutError:
            self.stop()
            raise CarrierError(
                f"sipp caller still running after {timeout:.0f} s\n{self._tail()}"
            ) from None
        self.output = out.decode(errors="replace")
        self.returncode = proc.returncode
        return self.reports()

    async def run(self, timeout: float) -> list[CallReport]:
        """:meth:`start` then :meth:`wait`."""
        await self.start()
        return await self.wait(timeout)

    def reports(self) -> list[CallReport]:
        """The calls as the log file tells them so far."""
        steps: dict[int, list[tuple[float, str, str]]] = {}
        with contextlib.suppress(OSError):
            for line in self.log_file.read_text(errors="replace").splitlines():
                m = _LOG.match(line.strip())
                if m:
                    steps.setdefault(int(m.group(1)), []).append(
                        (int(m.group(2)) / 1000, m.group(3), m.group(4))
                    )
        return [self._report(n, s) for n, s in sorted(steps.items())]

    def _report(self, call: int, steps: list[tuple[float, str, str]]) -> CallReport:
        at = {event: t for t, event, _ in steps}
        status: int | None = None
        for _, event, rest in steps:
            m = re.search(r"(?:code=|SIP/2\.0 )(\d{3})", rest)
            if event in ("answered", "failed") and m:
                status = int(m.group(1))
        invite, answered = at.get("invite"), at.get("answered")
        final = answered if answered is not None else at.get("failed")
        end = at.get("end")
        return CallReport(
            call=call,
            did=self.did,
            caller=self.caller,
            status=status,
            bye_from_asterisk="bye_received" in at,
            bye_from_caller="bye_sent" in at,
            pressed="keys" in at,
            setup_s=None if invite is None or final is None else final - invite,
            duration_s=None if answered is None or end is None else end - answered,
            ended=end is not None,
        )

    def stop(self) -> None:
        """Kill our own sipp (only it) if it still runs."""
        proc = self._proc
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()

    def _tail(self, lines: int = 20) -> str:
        return tail_files((self.log_file, self.error_file), lines, "(no sipp output)")
