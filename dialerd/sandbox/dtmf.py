"""RFC 4733 DTMF key sequences as pcap files sipp can play (``play_pcap_audio``).

Debian's ``sip-tester`` ships one recording per key
(``/usr/share/sip-tester/dtmf_2833_<key>.pcap``), but every recording has
the same RTP timestamp and sequence numbers. Played one after another, a
receiver takes the second key for a retransmission of the first event and
drops it (Asterisk did: only the first digit of a PIN arrived). So a whole
sequence is written as one pcap, from the recording's packets, each key its
own event: its code, its own RTP timestamp (1 s of RTP clock apart), rising sequence numbers, and
``gap_s`` between keys in the capture's clock (sipp plays at that pace).
"""

from __future__ import annotations

import struct
from pathlib import Path

RECORDINGS = Path("/usr/share/sip-tester")
#: RFC 4733 event codes
EVENTS = {**{str(d): d for d in range(10)}, "*": 10, "#": 11}
_ETH, _PCAP_HDR, _REC_HDR = 14, 24, 16


def _packets(path: Path) -> tuple[bytes, list[tuple[float, bytes]]]:
    data = path.read_bytes()
    header, off, out = data[:_PCAP_HDR], _PCAP_HDR, []
    while off + _REC_HDR <= len(data):
        sec, usec, incl, _orig = struct.unpack("<IIII", data[off : off + _REC_HDR])
        off += _REC_HDR
        out.append((sec + usec / 1e6, data[off : off + incl]))
        off += incl
    return header, out


def write_sequence(
    keys: str, out: Path, gap_s: float = 0.3, *, after: int = 0, template: Path | None = None
) -> Path:
    """``keys`` (0-9 * #) as one pcap at ``out``; returns ``out``.

    Several files played on one call must not reuse timestamps (the receiver
    would drop them as old): ``after`` is how many keys the call's earlier
    files held, and numbering continues from there."""
    header, pkts = _packets(template or RECORDINGS / "dtmf_2833_1.pcap")
    t0 = pkts[0][0]
    body = bytearray()
    seq = 1000 + after * len(pkts)
    ts0 = 160_000 + after * 8000  # 1 s of RTP clock per earlier key
    for i, key in enumerate(keys):
        code = EVENTS[key]
        for t, frame in pkts:
            p = bytearray(frame)
            ip = _ETH
            ihl = (p[ip] & 0x0F) * 4
            udp = ip + ihl
            rtp = udp + 8
            p[udp + 6 : udp + 8] = b"\x00\x00"  # no UDP checksum (IPv4 allows it)
            struct.pack_into(">H", p, rtp + 2, seq & 0xFFFF)
            struct.pack_into(">I", p, rtp + 4, ts0 + i * 8000)
            p[rtp + 12] = code  # the event; volume, E bit and duration kept
            seq += 1
            when = i * gap_s + (t - t0)
            sec = int(when)
            body += struct.pack("<IIII", sec, int((when - sec) * 1e6), len(p), len(p))
            body += p
    out.write_bytes(header + bytes(body))
    return out
