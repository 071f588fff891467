"""What Asterisk itself saw of the daemon's calls: the double-dial check.

The daemon's own records cannot prove that it never dialed a customer twice
(a bug that loses an attempt loses its record too). Asterisk's AMI events,
kept by an independent listener (:class:`dialerd.sandbox.recorder.AmiRecorder`,
logged in as the harness user), can: every attempt id is the ChannelId of
its Originate, so each channel, OriginateResponse and Hangup with that
Uniqueid belongs to exactly one attempt of the store.

One checker for the soak (``bench/soak.py``, which reports the counts) and
the recovery tests (which assert them clean), so both look for the same
faults in the same way:

* an attempt id that made two channels (a re-sent Originate that Asterisk
  accepted);
* an attempt id with two OriginateResponses (an Originate sent twice, even
  if the second was refused);
* one lead, or one phone number, in two live calls at once (Asterisk's own
  event times: from the channel's first Newchannel to its last Hangup);
* channels whose Hangup never came and are not explained by Asterisk going
  away (its channels go with it): reported, as ``unmatched_hangups``.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from dialerd.sandbox.recorder import AmiRecorder, Seen

#: a live call: (first Newchannel, last Hangup or when Asterisk went away)
Span = tuple[float, float]


class AttemptLike(Protocol):
    """What the checker needs of an attempt (``StoredAttempt`` has it)."""

    @property
    def id(self) -> str: ...

    @property
    def lead_id(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Overlap:
    """Two calls of one lead (or one number) live at the same time."""

    key: str  # "lead <id>" or "number <phone>"
    first: str  # attempt ids, in start order
    second: str


@dataclass(slots=True)
class AsteriskView:
    """Counts from Asterisk's events for the attempts of a store."""

    #: Newchannel events per attempt id (1 for every attempt Asterisk dialed)
    channels: Counter[str] = field(default_factory=Counter)
    #: OriginateResponse events per attempt id (at most 1)
    originate_responses: Counter[str] = field(default_factory=Counter)
    #: Hangup events per attempt id
    hangups: Counter[str] = field(default_factory=Counter)
    #: OriginateResponses per phone number (when the attempts carry ``phone``)
    originates_per_number: Counter[str] = field(default_factory=Counter)
    #: each attempt's live span in Asterisk
    spans: dict[str, Span] = field(default_factory=dict)
    #: attempt ids whose channel never hung up while Asterisk was there
    unmatched_hangups: list[str] = field(default_factory=list)
    overlaps: list[Overlap] = field(default_factory=list)

    @property
    def double_channels(self) -> list[str]:
        """Attempt ids that made more than one channel."""
        return sorted(uid for uid, n in self.channels.items() if n > 1)

    @property
    def originated_twice(self) -> list[str]:
        """Attempt ids with more than one OriginateResponse."""
        return sorted(uid for uid, n in self.originate_responses.items() if n > 1)

    @property
    def double_dials(self) -> int:
        """Every way a customer could have been dialed twice, counted once each."""
        return len(self.double_channels) + len(self.originated_twice) + len(self.overlaps)

    def assert_no_double_dials(self) -> None:
        """Raise :class:`AssertionError` saying what went wrong, if anything."""
        assert not self.double_channels, f"an attempt id made two channels: {self.double_channels}"
        assert not self.originated_twice, f"an Originate was sent twice: {self.originated_twice}"
        assert not self.overlaps, f"a lead was in two live calls at once: {self.overlaps}"

    def figures(self) -> dict[str, int]:
        """The counts a report prints."""
        return {
            "double_channels": len(self.double_channels),
            "originated_twice": len(self.originated_twice),
            "overlapping_calls": len(self.overlaps),
            "unmatched_hangups": len(self.unmatched_hangups),
        }


def _events(sources: Iterable[AmiRecorder | Sequence[Seen]]) -> Iterable[Seen]:
    for src in sources:
        yield from src.events if isinstance(src, AmiRecorder) else src


def asterisk_view(
    sources: Iterable[AmiRecorder | Sequence[Seen]],
    attempts: Iterable[AttemptLike],
    gone_at: Iterable[float] = (),
) -> AsteriskView:
    """Build the view of ``attempts`` from the events of ``sources``
    (recorders, or their event lists, in the order they recorded).

    ``gone_at``: the times Asterisk itself went away (a restart or a crash):
    a channel with no Hangup ends at the first of them after its start; with
    none after it, it counts as live forever and as an unmatched hangup.
    """
    by_id = {a.id: a for a in attempts}
    gone = sorted(gone_at)
    view = AsteriskView()
    start: dict[str, float] = {}
    end: dict[str, float] = {}
    for s in _events(sources):
        uid = s.get("Uniqueid")
        if uid not in by_id:
            continue
        event = s.get("Event")
        if event == "Newchannel":
            view.channels[uid] += 1
            start.setdefault(uid, s.at)
        elif event == "OriginateResponse":
            view.originate_responses[uid] += 1
            phone = getattr(by_id[uid], "phone", None)
            if phone:
                view.originates_per_number[phone] += 1
        elif event == "Hangup":
            view.hangups[uid] += 1
            end[uid] = s.at

    per_lead: dict[str, list[tuple[float, float, str]]] = defaultdict(list)
    for uid, t0 in start.items():
        t1 = end.get(uid)
        if t1 is None:
            t1 = next((g for g in gone if g >= t0), float("inf"))
            if t1 == float("inf"):
                view.unmatched_hangups.append(uid)
        view.spans[uid] = (t0, t1)
        a = by_id[uid]
        per_lead[f"lead {a.lead_id}"].append((t0, t1, uid))
        phone = getattr(a, "phone", None)
        if phone:
            per_lead[f"number {phone}"].append((t0, t1, uid))
    seen: set[tuple[str, str]] = set()
    for key, calls in per_lead.items():
        calls.sort()
        # against the latest end so far, not only the previous call: a long
        # call overlaps every later one that starts before it ends
        last_end, last_uid = float("-inf"), ""
        for s2, e2, u2 in calls:
            # one double dial of a lead is also one of its number: count once
            if s2 < last_end and (last_uid, u2) not in seen:
                seen.add((last_uid, u2))
                view.overlaps.append(Overlap(key, last_uid, u2))
            if e2 > last_end:
                last_end, last_uid = e2, u2
    return view
