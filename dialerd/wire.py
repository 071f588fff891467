"""JSON from outside (MQTT commands, the control socket), read with bounds.

``json.loads`` alone is not safe on a hostile message: it recurses (a few
thousand ``[`` raise RecursionError), accepts ``NaN`` and ``Infinity``,
turns ``1e999`` into infinity, builds integers of any length (whose
``float()`` overflows), and lets ``"\\ud800"`` through as a lone surrogate
that cannot be encoded again (as a topic, a log line, a database value).
:func:`loads` refuses all of these with a :class:`WireError` whose message
is short and safe to send back and to log: it never quotes the input.
"""

from __future__ import annotations

import json
import math
from typing import Any

#: an integer literal longer than this is refused before it is built
MAX_INT_DIGITS = 30


class WireError(ValueError):
    """The message is refused; ``str()`` says why, for the sender."""


def nesting_depth(text: str, limit: int) -> int:
    """How deeply ``[`` and ``{`` nest in ``text`` (outside strings),
    counting stops once past ``limit``. Linear, no recursion, no parsing."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    return deepest
        elif ch in "]}":
            depth -= 1
    return deepest


def _constant(name: str) -> Any:
    raise WireError("NaN and Infinity are not numbers")


def _int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise WireError(f"integer longer than {MAX_INT_DIGITS} digits")
    return int(text)


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise WireError(f"number out of range: {text[:20]}")
    return value


def _check_strings(obj: Any) -> None:
    """Every key and string value must encode as UTF-8 (JSON's ``\\ud800``
    escape decodes to a lone surrogate, which does not). Recursion is safe:
    the depth was bounded before parsing."""
    if isinstance(obj, str):
        try:
            obj.encode("utf-8")
        except UnicodeEncodeError:
            raise WireError("a string holds a lone surrogate") from None
    elif isinstance(obj, dict):
        for k, v in obj.items():
            _check_strings(k)
            _check_strings(v)
    elif isinstance(obj, list):
        for v in obj:
            _check_strings(v)


def loads(data: bytes | bytearray | str, *, max_bytes: int, max_depth: int) -> Any:
    """Parse one JSON document from an untrusted sender, or raise
    :class:`WireError`: larger than ``max_bytes``, not UTF-8, nested deeper
    than ``max_depth``, not JSON, NaN/Infinity, a float out of range, an
    integer of more than :data:`MAX_INT_DIGITS` digits, a lone surrogate."""
    if len(data) > max_bytes:
        raise WireError(f"message too large ({len(data)} bytes, at most {max_bytes})")
    if isinstance(data, bytes | bytearray):
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError:
            raise WireError("not UTF-8") from None
    else:
        text = data
    if nesting_depth(text, max_depth) > max_depth:
        raise WireError(f"JSON nested deeper than {max_depth} levels")
    try:
        obj = json.loads(text, parse_constant=_constant, parse_int=_int, parse_float=_float)
    except WireError:
        raise
    except json.JSONDecodeError as exc:  # its message names a position, not the input
        raise WireError(f"not JSON: {exc.msg} at char {exc.pos}") from None
    _check_strings(obj)
    return obj
