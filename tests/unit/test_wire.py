"""``dialerd.wire.loads``: hostile JSON is refused with a WireError, never
another exception; the depth scan agrees with the real nesting."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dialerd.wire import WireError, loads, nesting_depth

_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**20), 10**20)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet='[]{}"\\ab,:', max_size=10),
    lambda kids: (
        st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=4), kids, max_size=3)
    ),
    max_leaves=20,
)


def _depth(v: Any) -> int:
    if isinstance(v, list):
        return 1 + max((_depth(x) for x in v), default=0)
    if isinstance(v, dict):
        return 1 + max((_depth(x) for x in v.values()), default=0)
    return 0


@given(_json)
def test_the_depth_scan_agrees_with_the_real_nesting(v: Any) -> None:
    text = json.dumps(v)
    assert nesting_depth(text, 1000) == _depth(v)
    assert loads(text, max_bytes=10**6, max_depth=max(_depth(v), 1)) == v


@settings(max_examples=500)
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_any_bytes_give_a_value_or_a_wire_error(data: bytes) -> None:
    try:
        loads(data, max_bytes=200, max_depth=4)
    except WireError as exc:
        assert len(str(exc)) < 100


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"x" * 101, "message too large (101 bytes, at most 100)"),
        (b"[" * 5 + b"]" * 5, "JSON nested deeper than 4 levels"),
        (b"[" * 100, "JSON nested deeper than 4 levels"),
        (b'{"a": NaN}', "NaN and Infinity are not numbers"),
        (b"Infinity", "NaN and Infinity are not numbers"),
        (b"[1e999]", "number out of range: 1e999"),
        (b"-" + b"9" * 31, "integer longer than 30 digits"),
        (b'["\\ud800"]', "a string holds a lone surrogate"),
        (b'{"\\udfff": 1}', "a string holds a lone surrogate"),
        (b'"\xed\xa0\x80"', "not UTF-8"),
        (b"\xff", "not UTF-8"),
        (b'{"a": ', "not JSON: Expecting value at char 6"),
    ],
)
def test_hostile_json_is_refused(data: bytes, error: str) -> None:
    with pytest.raises(WireError) as exc:
        loads(data, max_bytes=100, max_depth=4)
    assert str(exc.value) == error


def test_brackets_in_strings_do_not_count() -> None:
    assert nesting_depth('["[[[[", "\\"[[[", {"{": "}}}}"}]', 10) == 2
    assert loads('{"a": "[[[[[[[[[[[["}', max_bytes=100, max_depth=1) == {"a": "[" * 12}
    assert loads("-" + "9" * 30, max_bytes=100, max_depth=1) == -int("9" * 30)
