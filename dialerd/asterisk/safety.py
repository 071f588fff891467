"""Values that reach AMI are checked here, once, at the boundary.

panoramisk writes header values verbatim: a CR or LF in a value ends the
header and lets the rest of the string become new headers or a new action.
Channel variables additionally must not contain ``,`` (Originate's Variable
separator in some versions) or ``=`` in the name.
"""

from __future__ import annotations

import re


class UnsafeValue(ValueError):
    """A value that could alter the AMI frame or the channel string."""


_CTRL = re.compile(r"[\x00-\x1f\x7f]")
_VAR_NAME = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")
_VAR_VALUE = re.compile(r"^[A-Za-z0-9 _.+:@/<>\"'-]{0,255}$")
_CHANNEL = re.compile(r"^[A-Za-z0-9]+/[A-Za-z0-9_.+@-]+$")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,148}$")


def header(value: str) -> str:
    """Any header value: no control characters at all (CR/LF above all)."""
    if _CTRL.search(value):
        raise UnsafeValue(f"control character in AMI value {value!r}")
    return value


def has_control(value: str) -> bool:
    """Whether ``value`` holds a control character (CR/LF above all)."""
    return _CTRL.search(value) is not None


def variable(name: str, value: str) -> str:
    """``NAME=value`` for an Originate ``Variable`` header."""
    if not _VAR_NAME.fullmatch(name):
        raise UnsafeValue(f"bad channel variable name {name!r}")
    if not _VAR_VALUE.fullmatch(value) or _CTRL.search(value):
        raise UnsafeValue(f"unsafe value for {name}: {value!r}")
    return f"{name}={value}"


def channel(value: str) -> str:
    """A dial string of one channel: ``TECH/resource`` and nothing that could
    add a second channel (``&``), options (``,``) or a header (CR/LF)."""
    if not _CHANNEL.fullmatch(value):
        raise UnsafeValue(f"unsafe channel string {value!r}")
    return value


def ident(value: str) -> str:
    """Attempt ids (used as ChannelId, at most 149 characters), agent ids."""
    if not _ID.fullmatch(value):
        raise UnsafeValue(f"unsafe identifier {value!r}")
    return value


_LIVE_CHANNEL = re.compile(r"^[A-Za-z0-9]+/[A-Za-z0-9_.+@;/-]{1,200}$")


def is_live_channel(value: str) -> bool:
    """Whether ``value`` looks like a channel name Asterisk reports."""
    return _LIVE_CHANNEL.fullmatch(value) is not None


def live_channel(value: str) -> str:
    """A channel name Asterisk reported (``Local/x@ctx-0000001a;1``), echoed
    back in Redirect/Hangup: it may hold ``;`` but never a control character."""
    if not _LIVE_CHANNEL.fullmatch(value):
        raise UnsafeValue(f"unexpected channel name {value!r}")
    return value
