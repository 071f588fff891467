"""Phone numbers: parse with phonenumbers, hand out E.164 only.

Everything downstream (the trunk channel string, AMI headers, the dialplan)
sees only ``+`` followed by digits, so a lead's number can never carry a
channel-string separator (``/ @ & ,``) or a CR/LF into Asterisk.
"""

from __future__ import annotations

import re

import phonenumbers

_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
#: characters a human writes around a number; anything else is refused
_ALLOWED_INPUT = re.compile(r"^[0-9+()\-. ]{3,32}$")


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
