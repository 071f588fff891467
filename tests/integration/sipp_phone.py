"""A real SIP agent phone for tests: sipp (Debian's sip-tester) runs one of
``sipp/*.xml`` as agent 7001 of the sandbox, playing RFC 4733 key
sequences written by :mod:`dialerd.sandbox.dtmf`."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
from pathlib import Path
from typing import Any

import pytest

from dialerd.sandbox import dtmf

SIPP_DIR = Path(__file__).parent / "sipp"


def need_sipp() -> str:
    """sipp's path; skip (fail in CI) without it or its DTMF recordings."""
    sipp = shutil.which("sipp")
    if sipp is None or not (dtmf.RECORDINGS / "dtmf_2833_1.pcap").exists():
        reason = "sipp or its DTMF recordings missing (apt-get install sip-tester)"
        if os.environ.get("CI", "").lower() in {"true", "1", "yes"}:
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return sipp


def _udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def run_sipp(
    sipp: str,
    sb: Any,
    scenario: str,
    tmp: Path,
    timeout_s: int,
    keys: dict[str, str],
    agent: str = "7001",
) -> str:
    """Run one scenario to its end as ``agent``; its output, or a failure
    with it. ``keys``: pcap name (without .pcap) -> the keys it plays, in
    the order the call plays them."""
    inf = tmp / "agent.csv"
    inf.write_text(f"SEQUENTIAL\n{agent};\n")
    args = [
        sipp, f"127.0.0.1:{sb.sip_port}",
        "-sf", str(SIPP_DIR / scenario),
        "-inf", str(inf),
        "-au", agent, "-ap", sb.sip_secret,
        "-m", "1", "-l", "1",
        "-i", "127.0.0.1", "-p", str(_udp_port()),
        "-mi", "127.0.0.1", "-mp", str(_udp_port()),
        "-timeout", f"{timeout_s}s", "-timeout_error",
        "-nostdin",
        "-trace_err", "-error_file", str(tmp / f"{scenario}.err"),
        "-trace_msg", "-message_file", str(tmp / f"{scenario}.msg"),
    ]  # fmt: skip
    kdir = tmp / "keys"
    kdir.mkdir(exist_ok=True)
    sent = 0
    for name, seq in keys.items():
        dtmf.write_sequence(seq, kdir / f"{name}.pcap", after=sent)
        sent += len(seq)
    proc = await asyncio.create_subprocess_exec(
        *args, cwd=kdir, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout_s + 30)
    text = out.decode(errors="replace")
    if proc.returncode != 0:
        err = tmp / f"{scenario}.err"
        detail = err.read_text(errors="replace")[-3000:] if err.exists() else ""
        raise AssertionError(f"sipp {scenario} exit {proc.returncode}\n{text[-3000:]}\n{detail}")
    return text
