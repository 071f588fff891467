"""Phone numbers: parse with phonenumbers, hand out E.164 only.

Everything downstream (the trunk channel string, AMI headers, the dialplan)
sees only ``+`` followed by digits, so a lead's number can never carry a
channel-string separator (``/ @ & ,``) or a CR/LF into Asterisk.

Speed (a million-lead import calls :func:`normalize` a million times):
``phonenumbers.parse`` + ``is_valid_number`` + ``format_number`` cost about
100 µs a number, nearly all of it Python overhead around a handful of
regular-expression matches. :func:`normalize` first tries
:func:`_fast_normalize`, a shortcut for the plain shapes a lead list holds
(``+`` and digits, or national digits with single spaces, dots or dashes
between groups). It runs phonenumbers' own algorithm, step for step, on
phonenumbers' own metadata, but with the metadata's patterns compiled once
(and a region's number-type patterns joined into one per length). It only
ever *accepts*: whatever it is unsure of, and every number it would refuse,
goes through phonenumbers itself, so every refusal and its message are
phonenumbers' own. ``tests/unit/test_phone.py`` checks it gives the same
answer as phonenumbers on ~50,000 numbers of every region, valid and not
(``DIALERD_PHONE_SAMPLE=10`` for ten times as many random ones).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field

import phonenumbers
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, SUPPORTED_REGIONS, PhoneMetadata
from phonenumbers.phonemetadata import PhoneNumberDesc

_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
#: characters a human writes around a number; anything else is refused
_ALLOWED_INPUT = re.compile(r"^[0-9+()\-. ]{3,32}$")

#: the shapes the shortcut takes: an optional ``+`` right before the first
#: digit, then ASCII digits in groups with single separators between them
#: (a separator is required between groups: no backtracking blow-up)
_SIMPLE = re.compile(r"(\+?)([0-9]+(?:[ .\-][0-9]+)*)")
_SEPARATORS = str.maketrans("", "", " .-")
#: phonenumbers' _MIN_LENGTH_FOR_NSN, _MAX_LENGTH_FOR_NSN, _MAX_LENGTH_COUNTRY_CODE
_MIN_NSN, _MAX_NSN, _MAX_CC = 2, 17, 3


class PhoneError(ValueError):
    """A number that cannot be dialed safely."""


def normalize(raw: str, region: str | None) -> str:
    """Return the E.164 form of ``raw`` or raise :class:`PhoneError`.

    ``region`` (ISO 3166 alpha-2) applies to numbers written without a
    country code. Input is checked against a whitelist *before* parsing:
    phonenumbers is lenient (it strips letters and punctuation), and a
    number like ``"5551234&Local/x"`` must be rejected, not cleaned.
    """
    text = raw.strip()
    if not _ALLOWED_INPUT.fullmatch(text):
        raise PhoneError(f"{raw!r} holds characters a phone number cannot have")
    e164 = _fast_normalize(text, region)
    if e164 is not None:
        return e164
    return _slow_normalize(raw, text, region)


def _slow_normalize(raw: str, text: str, region: str | None) -> str:
    """phonenumbers itself: the reference, and the path of every refusal."""
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise PhoneError(f"{raw!r} is not a phone number ({exc})") from None
    if not phonenumbers.is_valid_number(parsed):
        raise PhoneError(f"{raw!r} is not a valid number")
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    if not _E164.fullmatch(e164):  # belt and braces: never let anything else out
        raise PhoneError(f"{raw!r} did not normalise to E.164")
    return e164


def is_e164(value: str) -> bool:
    return bool(_E164.fullmatch(value))


# --------------------------------------------------------------------- shortcut


def _pattern(desc: PhoneNumberDesc | None) -> str | None:
    if desc is None or not desc.national_number_pattern:
        return None
    return desc.national_number_pattern


@dataclass(slots=True)
class _Region:
    """One region's metadata, compiled for :func:`_fast_normalize`."""

    code: str
    country_code: int
    country_code_text: str
    #: international_prefix (IDD), national_prefix_for_parsing
    idd: re.Pattern[str] | None
    national_prefix: re.Pattern[str] | None
    has_transform_rule: bool
    #: general_desc: pattern and lengths
    general: re.Pattern[str] | None
    general_lengths: tuple[int, ...]
    local_only_lengths: tuple[int, ...]
    leading_digits: re.Pattern[str] | None
    #: (lengths, pattern) of the descs _number_type_helper tries, in its order
    types: tuple[tuple[tuple[int, ...], str], ...]
    #: length -> one pattern joining the types possible at that length
    by_length: dict[int, re.Pattern[str] | None] = field(default_factory=dict)

    @classmethod
    def build(cls, code: str, md: PhoneMetadata) -> _Region | None:
        gd = md.general_desc
        if md.country_code is None or gd is None or not gd.possible_length:
            return None
        descs = [
            md.premium_rate,
            md.toll_free,
            md.shared_cost,
            md.voip,
            md.personal_number,
            md.pager,
            md.uan,
            md.voicemail,
            md.fixed_line,
        ]
        if not md.same_mobile_and_fixed_line_pattern:
            descs.append(md.mobile)
        types = tuple(
            (tuple(d.possible_length), p) for d in descs if d is not None and (p := _pattern(d))
        )
        gp = _pattern(gd)
        return cls(
            code=code,
            country_code=md.country_code,
            country_code_text=str(md.country_code),
            idd=re.compile(md.international_prefix) if md.international_prefix else None,
            national_prefix=(
                re.compile(md.national_prefix_for_parsing)
                if md.national_prefix_for_parsing
                else None
            ),
            has_transform_rule=bool(md.national_prefix_transform_rule),
            general=re.compile(gp) if gp else None,
            general_lengths=tuple(gd.possible_length),
            local_only_lengths=tuple(gd.possible_length_local_only),
            leading_digits=re.compile(md.leading_digits) if md.leading_digits else None,
            types=types,
        )

    def general_match(self, nsn: str) -> bool:
        """phonenumbers' _match_national_number(nsn, general_desc, False)."""
        return self.general is not None and self.general.fullmatch(nsn) is not None

    def is_valid(self, nsn: str) -> bool:
        """phonenumbers' ``_number_type_helper(nsn, md) != UNKNOWN``: the
        general desc matches (length and pattern) and so does one type."""
        n = len(nsn)
        if n not in self.general_lengths or not self.general_match(nsn):
            return False
        try:
            joined = self.by_length[n]
        except KeyError:
            alts = [p for lengths, p in self.types if not lengths or n in lengths]
            try:
                # fullmatch of (?:a)|(?:b) is "a or b matches the whole string"
                joined = re.compile("|".join(f"(?:{p})" for p in alts)) if alts else None
            except re.error:  # patterns that do not join: phonenumbers decides
                joined = None
            self.by_length[n] = joined
        return joined is not None and joined.fullmatch(nsn) is not None

    def length_refused(self, nsn: str) -> bool:
        """``_test_number_length(nsn, md)`` is TOO_SHORT, IS_POSSIBLE_LOCAL_ONLY
        or INVALID_LENGTH (parse then keeps the national prefix)."""
        n, lengths = len(nsn), self.general_lengths
        if n in self.local_only_lengths or n < lengths[0]:
            return True
        if n == lengths[0] or n > lengths[-1]:  # IS_POSSIBLE, TOO_LONG
            return False
        return n not in lengths[1:]


_regions: dict[str, _Region | None] = {}
_regions_lock = threading.Lock()


def _region(code: str) -> _Region | None:
    try:
        return _regions[code]
    except KeyError:
        pass
    with _regions_lock:
        md = PhoneMetadata.metadata_for_region(code, None)
        got = None if md is None else _Region.build(code, md)
        _regions[code] = got
        return got


#: "44" -> 44: the country calling codes as written
_CC_TEXT = {str(cc): cc for cc in COUNTRY_CODE_TO_REGION_CODE}


def _country_code(digits: str) -> int:
    """phonenumbers' _extract_country_code: the shortest prefix of up to
    three digits that is a country calling code (the caller has made sure
    ``digits`` does not start with 0, which phonenumbers refuses first)."""
    for i in range(1, _MAX_CC + 1):
        cc = _CC_TEXT.get(digits[:i])
        if cc is not None:
            return cc
    return 0


def _is_valid_number(cc: int, nsn: str) -> bool:
    """phonenumbers' is_valid_number: region_code_for_number, then
    is_valid_number_for_region (a geographic country code only)."""
    regions = COUNTRY_CODE_TO_REGION_CODE[cc]
    chosen: _Region | None = None
    if len(regions) == 1:
        chosen = _region(regions[0])
    else:
        for code in regions:
            r = _region(code)
            if r is None:
                if PhoneMetadata.metadata_for_region(code.upper(), None) is None:
                    continue  # phonenumbers skips a region without metadata
                return False  # unusual metadata: let phonenumbers decide
            if r.leading_digits is not None:
                if r.leading_digits.match(nsn):
                    chosen = r
                    break
            elif r.is_valid(nsn):
                return r.country_code == cc
        else:
            return False
    return chosen is not None and chosen.country_code == cc and chosen.is_valid(nsn)


def _fast_normalize(text: str, region: str | None) -> str | None:
    """The E.164 form phonenumbers would give ``text``, if ``text`` has a
    plain shape and is valid; None means "ask phonenumbers" (not "invalid")."""
    m = _SIMPLE.fullmatch(text)
    if m is None:
        return None
    digits = m[2].translate(_SEPARATORS)
    if len(digits) < 3:
        return None
    if m[1]:  # "+": the country code follows
        if digits[0] == "0":
            return None
        cc = _country_code(digits)
        if cc == 0:
            return None
        main = COUNTRY_CODE_TO_REGION_CODE[cc][0]
        md = _region(main) if main in SUPPORTED_REGIONS else None  # not 001 (non-geo)
        nsn = digits[len(str(cc)) :]
    else:  # national: written as dialed in the default region
        if region is None or region not in SUPPORTED_REGIONS:
            return None
        md = _region(region)
        if md is None:
            return None
        if md.idd is not None and md.idd.match(digits):
            return None  # an international prefix (00, 011, ...)
        if digits.startswith(md.country_code_text):
            return None  # maybe the country code without "+"
        cc, nsn = md.country_code, digits
    if md is None or len(nsn) < _MIN_NSN:
        return None
    if md.national_prefix is not None:
        pm = md.national_prefix.match(nsn)
        if pm is not None:
            if md.has_transform_rule:
                return None
            stripped = nsn[pm.end() :]
            keep = md.general_match(nsn) and not md.general_match(stripped)
            if not keep and not md.length_refused(stripped):
                nsn = stripped
    if not _MIN_NSN <= len(nsn) <= _MAX_NSN or not _is_valid_number(cc, nsn):
        return None
    e164 = f"+{cc}{nsn}"
    return e164 if _E164.fullmatch(e164) else None
