"""A simulated carrier behind the production PJSIP trunk: one sipp UAS.

The sandbox Asterisk started with ``carrier_port=carrier.port`` sends every
call of ``PJSIP/{number}@trunk-out`` here, so the production trunk and real
SIP answers (180, 183, 200, 486, 480, 408, 503, 404, 603, CANCEL, BYE) are
what a test exercises, not Local channels.

Why ONE sipp instance that reads the dialed number: a real carrier is one
address behind one trunk endpoint and routes on the Request-URI, so the
trunk stays as shipped (one remote host), and calls of every behaviour run
at once, as in a campaign. sipp's ``-inf`` field files cannot do this: a UAS
takes their lines in the order calls arrive, not by number; several sipp
instances would need several trunks. The scenario (``sipp/carrier.xml``)
decodes the last four digits ``B R T T`` like ``[sim-customers]`` does, so
:func:`dialerd.sandbox.scenario.sim_number` makes carrier numbers too
(:func:`carrier_number`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from dialerd.sandbox.asterisk import CARRIER_HOST, tail_files
from dialerd.sandbox.scenario import sim_number

SCENARIO = Path(__file__).resolve().parent / "sipp" / "carrier.xml"

#: behaviour digit B of a carrier number (see ``sipp/carrier.xml``)
ANSWER = 1  # 180 Ringing, R s, 200 OK
BUSY = 2  # 100 Trying, R s, 486 Busy Here
UNAVAILABLE = 3  # 180 Ringing, R s, 480 Temporarily Unavailable
SERVICE_UNAVAILABLE = 4  # 100 Trying, R s, 503 Service Unavailable
REQUEST_TIMEOUT = 5  # 180 Ringing, R s, 408 Request Timeout
NOT_FOUND = 6  # 100 Trying, R s, 404 Not Found
EARLY_MEDIA = 7  # 183 Session Progress with SDP, R s, 200 OK
DECLINE = 8  # 100 Trying, R s, 603 Decline
RING_FOREVER = 9  # 180 Ringing until the Originate Timeout (CANCEL, 487)
BAD_GATEWAY = 0  # 100 Trying, R s, 502 Bad Gateway

#: what the carrier answers, per behaviour (for reports and test ids)
SIP_ANSWERS: dict[int, str] = {
    ANSWER: "180 then 200 OK",
    BUSY: "486 Busy Here",
    UNAVAILABLE: "180 then 480 Temporarily Unavailable",
    SERVICE_UNAVAILABLE: "503 Service Unavailable",
    REQUEST_TIMEOUT: "180 then 408 Request Timeout",
    NOT_FOUND: "404 Not Found",
    EARLY_MEDIA: "183 Session Progress then 200 OK",
    DECLINE: "603 Decline",
    RING_FOREVER: "180, no answer (CANCEL at the Originate Timeout)",
    BAD_GATEWAY: "502 Bad Gateway",
}


class CarrierError(RuntimeError):
    """sipp is missing or did not start; the message says why."""


def carrier_number(index: int, behaviour: int, ring_s: int = 1, talk_s: int = 0) -> str:
    """A valid UK number (E.164) the carrier answers with ``behaviour`` (0-9)
    after ``ring_s`` seconds, then (if answered) talks ``talk_s`` s (0: 300);
    ``index`` (0-7999) keeps numbers distinct. The layout is
    :func:`~dialerd.sandbox.scenario.sim_number`'s, which has no outcome 0."""
    if behaviour == BAD_GATEWAY:
        return sim_number(index, 1, ring_s, talk_s)[:-4] + f"0{ring_s}{talk_s:02d}"
    return sim_number(index, behaviour, ring_s, talk_s)


class SippCarrier:
    """sipp as the carrier's UAS on a free loopback UDP port.

    Start it BEFORE the sandbox, whose trunk must point at :attr:`port`.
    Synchronous, like :class:`~dialerd.sandbox.asterisk.AsteriskSandbox`, for
    fixtures; stopped by its own pid only. sipp's errors (unexpected
    messages, aborted calls) go to :attr:`error_file`.
    """

    def __init__(
        self,
        workdir: Path | None = None,
        *,
        scenario: Path = SCENARIO,
        sipp: str | None = None,
        host: str = CARRIER_HOST,
    ) -> None:
        #: the carrier's address (the sandbox's ``carrier_host``): not the
        #: agents' 127.0.0.1, see :data:`~dialerd.sandbox.asterisk.CARRIER_HOST`
        self.host = host
        found = sipp or shutil.which("sipp")
        if found is None:
            raise CarrierError("sipp is not installed (apt-get install sip-tester)")
        self.sipp = found
        self.scenario = scenario
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="dialerd-carrier-"))
        self.port = 0
        self.media_port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def error_file(self) -> Path:
        return self.workdir / "carrier-errors.log"

    @property
    def output_file(self) -> Path:
        return self.workdir / "carrier-out.log"

    def errors(self) -> str:
        """What sipp reported as errors so far (empty when none)."""
        with contextlib.suppress(OSError):
            return self.error_file.read_text(errors="replace")
        return ""

    def start(self, tries: int = 3, ready_timeout: float = 5.0) -> None:
        """Run sipp on fresh free ports; return once it holds its SIP port.

        A free port can be taken between the kernel naming it and sipp
        binding it (parallel test runs): a new pair of ports is tried then.
        """
        last = ""
        self.workdir.mkdir(parents=True, exist_ok=True)
        for _ in range(tries):
            self.port = free_udp_port(self.host)
            self.media_port = free_udp_port(self.host)
            args = [
                self.sipp,
                "-sf", str(self.scenario),
                "-i", self.host, "-p", str(self.port),
                "-mi", self.host, "-mp", str(self.media_port),
                "-bind_local",  # loopback only
                "-aa",  # 200 to OPTIONS/INFO/NOTIFY/UPDATE (qualify, if set)
                "-nostdin",
                "-trace_err", "-error_file", str(self.error_file),
            ]  # fmt: skip
            out = open(self.output_file, "ab")
            try:
                self.proc = subprocess.Popen(
                    args,
                    cwd=self.workdir,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            finally:
                out.close()
            deadline = time.monotonic() + ready_timeout
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                if _udp_port_taken(self.host, self.port):
                    return
                time.sleep(0.05)
            last = self._tail()
            self.stop()
        raise CarrierError(f"sipp carrier did not start:\n{last}")

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        """SIGTERM, then SIGKILL, to our own sipp only."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, sig)
            try:
                proc.wait(wait)
                return
            except subprocess.TimeoutExpired:
                continue

    def _tail(self, lines: int = 20) -> str:
        return tail_files((self.output_file, self.error_file), lines, "(no sipp output)")

    def __enter__(self) -> SippCarrier:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def free_udp_port(host: str) -> int:
    """A UDP port free on ``host`` (any loopback address) right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def _udp_port_taken(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind((host, port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False
