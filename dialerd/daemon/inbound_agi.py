"""The inbound call's first question, answered over FastAGI: is this DID ours?

``[dialer-inbound]`` (asterisk-conf/extensions.conf) runs
``AGI(agi://${DIALER_AGI}/inbound,<DID>)`` for every call from the carrier
trunk, before answering it. :func:`inbound_verdict` decides, as a pure
function of the loaded queues and the DID, and :func:`serve_inbound` writes
the verdict into the channel with ``SET VARIABLE``, ``DIALER_ACK`` last, so
the dialplan never sees a verdict without its details:

- a DID of an enabled queue: ``DIALER_QUEUE``, ``DIALER_DID`` (E.164),
  ``DIALER_HOLD_MOH`` or ``DIALER_HOLD_PROMPT`` + ``DIALER_HOLD_EVERY``,
  ``DIALER_ANNOUNCE`` (if the queue has one), ``DIALER_MAX_WAIT``, then
  ``DIALER_ACK=queue``: the dialplan answers, raises ``UserEvent
  DialerInbound`` and holds the caller until the daemon Redirects it;
- anything else: ``DIALER_ACK=no``: refused with cause 21, unanswered.

Why the DID is checked again here though the dialplan FILTERs it: the AGI
argument is whatever reached the dialplan from a stranger's INVITE, and only
an E.164 number that :func:`dialerd.phone.normalize` accepts is looked up.

The daemon serves it from its one FastAGI server
(:class:`dialerd.daemon.agiserver.AgiServer`, script ``inbound``) with the
queues it loaded (rebuilt on SIGHUP), and records a refusal. The caller is
then counted from the ``DialerInbound`` UserEvent (Call = the channel's
Uniqueid) and the core acts by ``DIALER_MAX_WAIT``; the dialplan's own
backstop hangs up 30 s later. The fallback's AMI actions are
:func:`dialerd.asterisk.mapping.fallback_actions`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from dialerd.campaign.queues import Queue
from dialerd.daemon.agi import AgiSession
from dialerd.phone import PhoneError, normalize

#: the FastAGI script name of ``[dialer-inbound]``
SCRIPT = "inbound"
#: a DID as the dialplan passes it: + and digits only (FILTER), bounded
_MAX_DID_LEN = 32

Ack = Literal["queue", "no"]


@dataclass(frozen=True, slots=True)
class InboundVerdict:
    """What the daemon tells the dialplan about one inbound call."""

    ack: Ack
    #: the queue taking the call (None: refused)
    queue: str | None = None
    #: the DID in E.164 (None: not a number or not ours)
    did: str | None = None
    #: ``SET VARIABLE`` pairs in the order they are set; ``DIALER_ACK`` last
    variables: tuple[tuple[str, str], ...] = ()


def queues_by_did(queues: Iterable[Queue]) -> dict[str, Queue]:
    """The enabled queues by each of their DIDs (E.164, as the model stores
    them). A disabled queue takes no calls, so its DIDs are refused; the
    loader already refused two enabled queues sharing a DID."""
    out: dict[str, Queue] = {}
    for q in queues:
        if q.enabled:
            for did in q.dids:
                out.setdefault(did, q)
    return out


def normalize_did(raw: str, region: str | None = None) -> str | None:
    """The E.164 form of a dialed number as a carrier sends it, or None.

    Carriers send the DID as ``+442071234567``, ``442071234567`` (E.164
    without the plus) or in national form (``02071234567``, read in
    ``region`` if one is given). Only ``+`` and digits are accepted; the
    dialplan's FILTER should have ensured that already.
    """
    text = raw.strip()
    if not text or len(text) > _MAX_DID_LEN:
        return None
    if not all(c.isdigit() and c.isascii() for c in text.lstrip("+")) or "+" in text[1:]:
        return None
    candidates = [text] if text.startswith("+") else [f"+{text}"]
    if not text.startswith("+") and region is not None:
        candidates.append(text)  # national form, in the region
    for c in candidates:
        try:
            return normalize(c, region if not c.startswith("+") else None)
        except PhoneError:
            continue
    return None


def inbound_verdict(
    queues: Mapping[str, Queue], did_arg: str, *, region: str | None = None
) -> InboundVerdict:
    """The verdict for a call to ``did_arg`` (the AGI's first argument),
    given the enabled queues by DID (:func:`queues_by_did`). Pure."""
    did = normalize_did(did_arg, region)
    queue = queues.get(did) if did is not None else None
    if did is None or queue is None:
        return InboundVerdict("no", None, did, (("DIALER_ACK", "no"),))
    pairs: list[tuple[str, str]] = [("DIALER_QUEUE", queue.name), ("DIALER_DID", did)]
    hold = queue.hold
    if hold.music is not None:
        pairs.append(("DIALER_HOLD_MOH", hold.music))
    else:
        assert hold.prompt is not None and hold.every_s is not None  # the model's rule
        pairs += [("DIALER_HOLD_PROMPT", hold.prompt), ("DIALER_HOLD_EVERY", str(hold.every_s))]
    if queue.announce_sound is not None:
        pairs.append(("DIALER_ANNOUNCE", queue.announce_sound))
    pairs += [("DIALER_MAX_WAIT", str(queue.max_wait_s)), ("DIALER_ACK", "queue")]
    return InboundVerdict("queue", queue.name, did, tuple(pairs))


async def serve_inbound(
    agi: AgiSession, queues: Mapping[str, Queue], *, region: str | None = None
) -> InboundVerdict:
    """Answer one ``inbound`` FastAGI session: set the verdict's variables
    on the channel (``DIALER_ACK`` last) and return the verdict, for the
    caller to log or count. Raises what :meth:`AgiSession.command` raises
    (the channel hung up, Asterisk refused a command); the dialplan then
    sees no ``DIALER_ACK`` and plays "service unavailable"."""
    verdict = inbound_verdict(queues, agi.arg(1), region=region)
    for name, value in verdict.variables:
        await agi.set_variable(name, value)
    return verdict
