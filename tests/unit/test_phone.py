"""dialerd.phone: the shortcut gives phonenumbers' answer, exactly.

:func:`dialerd.phone._fast_normalize` may only ever answer what phonenumbers
(``parse`` + ``is_valid_number`` + ``format_number(E164)``) answers, and
leaves everything else to it. These tests compare the two on numbers of
every region phonenumbers knows: its example numbers of every type in
E.164, international and national writing, the same with digits changed,
dropped and added (most of those are invalid), random digit strings after
every country code and behind every national prefix, and the shapes a
lead list holds (the import benchmark's London numbers, NANP, Italian
leading zeros, numbers written with 00/011 or with the country code but no
``+``). ``DIALERD_PHONE_SAMPLE=N`` multiplies the random part by N.
"""

from __future__ import annotations

import os
import random
import re

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import PhoneNumberFormat as Fmt
from phonenumbers import PhoneNumberType as Type

from dialerd import phone
from dialerd.phone import PhoneError, normalize

SCALE = int(os.environ.get("DIALERD_PHONE_SAMPLE", "1"))
REGIONS = sorted(phonenumbers.SUPPORTED_REGIONS)
#: regions the import benchmark and the example campaigns use, and neighbours
#: with unusual plans (leading zeros, shared country codes, transform rules)
FOCUS = ["GB", "US", "CA", "IT", "DE", "FR", "ES", "NL", "IE", "AU", "BR", "AR", "MX", "JE", "SM"]
TYPES = [
    Type.FIXED_LINE,
    Type.MOBILE,
    Type.TOLL_FREE,
    Type.PREMIUM_RATE,
    Type.SHARED_COST,
    Type.VOIP,
    Type.PERSONAL_NUMBER,
    Type.PAGER,
    Type.UAN,
    Type.VOICEMAIL,
]


def reference(text: str, region: str | None) -> str:
    """phonenumbers alone: the E.164 form, or "!" and the refusal."""
    try:
        return phone._slow_normalize(text, text, region)
    except PhoneError as exc:
        return "!" + str(exc)


def check(text: str, region: str | None) -> tuple[bool, bool]:
    """The shortcut agrees with phonenumbers: (it answered itself, the
    number is valid)."""
    want = reference(text, region)
    fast = phone._fast_normalize(text, region)
    if fast is not None:
        assert fast == want, (text, region)
    return fast is not None, not want.startswith("!")


def writings(num: phonenumbers.PhoneNumber) -> list[str]:
    e164 = phonenumbers.format_number(num, Fmt.E164)
    intl = phonenumbers.format_number(num, Fmt.INTERNATIONAL)
    national = phonenumbers.format_number(num, Fmt.NATIONAL)
    return [e164, intl, national, re.sub(r"[^0-9+]", "", national), intl.replace(" ", "-")]


def mutations(rng: random.Random, s: str, n: int) -> list[str]:
    """``s`` with a digit changed, dropped or added, ``n`` times."""
    out = []
    pos = [i for i, c in enumerate(s) if c.isdigit()]
    for _ in range(n):
        i = rng.choice(pos)
        d = str(rng.randrange(10))
        kind = rng.randrange(3)
        if kind == 0:
            out.append(s[:i] + d + s[i + 1 :])
        elif kind == 1 and len(pos) > 3:
            out.append(s[:i] + s[i + 1 :])
        else:
            out.append(s[:i] + d + s[i:])
    return out


def random_digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def sample(rng: random.Random, scale: int) -> list[tuple[str, str | None]]:
    cases: list[tuple[str, str | None]] = []
    for region in REGIONS:
        examples = [phonenumbers.example_number_for_type(region, t) for t in TYPES]
        for ex in filter(None, examples):
            for text in writings(ex):
                for r in (region, "GB", "US", None):
                    cases.append((text, r))
                cases += [(m, region) for m in mutations(rng, text, 2 * scale)]
        md = phonenumbers.PhoneMetadata.metadata_for_region(region)
        assert md is not None and md.country_code is not None
        cc = str(md.country_code)
        prefix = md.national_prefix or ""
        for _ in range(8 * scale):
            body = random_digits(rng, rng.randint(4, 15))
            cases.append(("+" + cc + body, region))
            cases.append((prefix + body, region))
            cases.append((body, region))
            cases.append((cc + body, region))
            cases.append(("00" + cc + body, region))
    for code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
        for _ in range(10 * scale):  # non-geographic ones (800, 882, ...) too
            cases.append(("+" + str(code) + random_digits(rng, rng.randint(1, 16)), "GB"))
    for region in FOCUS:
        for _ in range(200 * scale):
            typed = phonenumbers.example_number_for_type(region, rng.choice(TYPES[:3]))
            if typed is not None:
                text = rng.choice(writings(typed))
                cases += [(m, region) for m in mutations(rng, text, 1)]
    return cases


def test_shortcut_equals_phonenumbers_on_every_region() -> None:
    rng = random.Random(6)
    results = [check(text, region) for text, region in sample(rng, SCALE)]
    answered = sum(a for a, _ in results)
    valid = sum(v for _, v in results)
    # the shortcut must really be taken, not only be harmless
    assert answered > 0.85 * valid, (answered, valid, len(results))


def bench_number(rng: random.Random, i: int) -> str:
    """The import benchmark's shapes (bench/import_1m.py)."""
    k = rng.randrange(20_000_000)
    exch, sub = divmod(k, 10_000_000)
    s = f"{sub:07d}"
    return f"+4420{7 + exch}{s}" if i % 2 else f"020 {7 + exch}{s[:3]} {s[3:]}"


def test_shortcut_takes_every_benchmark_number() -> None:
    rng = random.Random(1)
    for i in range(2000 * SCALE):
        assert check(bench_number(rng, i), "GB") == (True, True)


@pytest.mark.parametrize(
    ("text", "region"),
    [
        ("+390612345678", "GB"),  # Italy: the leading zero stays
        ("06 1234 5678", "IT"),
        ("+39 06 1234 5678", "IT"),
        ("+39 0039 1234", "IT"),
        ("+39 3123456789", "IT"),  # mobile
        ("+3906", "IT"),
        ("+37806123", "SM"),  # San Marino, national prefix 0549 added by the transform rule
        ("0549 123456", "SM"),
        ("+1 212 555 0142", "GB"),
        ("212-555-0142", "US"),
        ("1 212 555 0142", "US"),  # the country code without "+"
        ("011 44 20 7946 0001", "US"),  # IDD
        ("00 44 20 7946 0001", "GB"),
        ("0044 20 7946 0001", "GB"),
        ("+44 020 7946 0001", "GB"),  # national prefix after the country code
        ("+44 0 20 7946 0001", "GB"),
        ("020 7946 0001", "GB"),
        ("020.7946.0001", "GB"),
        ("44 20 7946 0001", "GB"),
        ("+44 1534 456789", "GB"),  # Jersey
        ("01534 456789", "GB"),
        ("+44 7700 900123", "GB"),
        ("+44 20 7946 000", "GB"),  # too short
        ("+44 20 7946 00011", "GB"),  # too long
        ("+800 1234 5678", "GB"),  # non-geographic
        ("+999 1234 5678", "GB"),  # no such country code
        ("+0 44 20 7946 0001", "GB"),
        ("+ 44 20 7946 0001", "GB"),
        ("++44 20 7946 0001", "GB"),
        ("020 7946 0001", None),
        ("020 7946 0001", "gb"),
        ("+44 20 7946 0001", None),
        ("+44 20 7946 0001", "gb"),
        ("2079460001", "GB"),
        ("030 123456", "DE"),
        ("+49 30 123456", "DE"),
        ("0 800 123 4567", "DE"),
        ("011 15 2345 6789", "AR"),
        ("+54 9 11 2345 6789", "AR"),  # Argentina: transform rule
        ("+55 11 91234 5678", "BR"),
        ("(011) 91234-5678", "BR"),
        ("123", "GB"),
        ("12 3", "GB"),
        ("+12", "GB"),
        ("000 000 000", "GB"),
        ("+44 000 000 0000", "GB"),
    ],
)
def test_edge_cases_agree(text: str, region: str | None) -> None:
    check(text, region)
    got: str
    try:
        got = normalize(text, region)
    except PhoneError as exc:
        got = "!" + str(exc)
    assert got == reference(text, region)


def test_benchmark_numbers_take_the_shortcut() -> None:
    assert phone._fast_normalize("020 7450 8515", "GB") == "+442074508515"
    assert phone._fast_normalize("+442089099312", "GB") == "+442089099312"
    assert phone._fast_normalize("+39 06 1234 5678", "GB") == "+390612345678"
    assert phone._fast_normalize("(212) 555-0142", "US") is None  # parentheses: phonenumbers


@settings(max_examples=2000, deadline=None)
@given(
    st.from_regex(r"\+?[0-9]{1,3}([ .\-]?[0-9]{1,5}){0,5}", fullmatch=True),
    st.sampled_from([*FOCUS, "JP", "CN", "IN", "RU", "ZA", "NG", None]),
)
def test_normalize_equals_phonenumbers(text: str, region: str | None) -> None:
    try:
        got = normalize(text, region)
    except PhoneError as exc:
        got = "!" + str(exc)
    if phone._ALLOWED_INPUT.fullmatch(text.strip()):
        assert got == reference(text, region)
