"""Agents and their PINs: the agents file, PIN hashing, PIN strength.

Who may log in by phone is the agents file (``agents_file`` in
dialerd.yaml): an id and a name. The PIN itself is set with
``dialerd agents set-pin <id>`` and kept in the store as a salted scrypt
hash (:func:`hash_pin`), never in clear. A ``pin:`` in the file is still
read, for installs that have not moved yet, but ``check-config`` warns
about each one (and refuses the example PINs that once shipped)::

    agents:
      "1001": {name: Alice Example}
      "1002": {name: Bob Example}

The PIN is collected by the daemon itself over FastAGI
(:mod:`dialerd.daemon.login`), so it never reaches the dialplan, an AMI
event or a log; the limits on wrong PINs are in :mod:`dialerd.login_limits`.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import itertools
import re
import secrets
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from dialerd.campaign.loader import load_yaml_model

AGENT_RE = re.compile(r"^[0-9]{2,10}$")
#: what the file accepts (old installs had 4-digit PINs) ...
PIN_RE = re.compile(r"^[0-9]{4,10}$")
#: ... and what ``set-pin`` accepts: a 4-digit PIN is 10,000 guesses
MIN_PIN_LEN = 6
MAX_PIN_LEN = 10

#: the PINs config/agents.yaml shipped with (and README examples): a PIN
#: anyone could read in the source is refused, not just warned about
EXAMPLE_PINS = frozenset(
    {
        "5305", "2471", "6468", "0791", "1186", "8779", "1542", "5991", "9548",
        "0950", "8313", "3517", "0614", "1408", "7104", "6851", "1144", "3943",
        "1486", "4821", "7730",
    }
)  # fmt: skip

#: scrypt cost: n=2**14, r=8 is 16 MiB and ~50 ms a check on one core, so a
#: stolen store costs an attacker real time per PIN tried (the PIN space is
#: small: the store must stay private all the same)
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
_SALT_BYTES, _KEY_BYTES = 16, 32
_SCHEME = "scrypt"


class AgentEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(default="", max_length=80)
    #: a PIN in clear (deprecated: ``dialerd agents set-pin`` stores a hash)
    pin: str | None = None

    @field_validator("pin", mode="before")
    @classmethod
    def _pin(cls, v: object) -> object:
        if v is None:
            return v
        if isinstance(v, int):
            raise ValueError('quote the PIN ("0123"): as a number YAML drops leading zeros')
        if not isinstance(v, str) or not PIN_RE.fullmatch(v):
            raise ValueError("a PIN is 4-10 digits, quoted")
        return v


class AgentsFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    agents: dict[str, AgentEntry] = Field(default_factory=dict)

    @field_validator("agents", mode="before")
    @classmethod
    def _ids(cls, v: object) -> object:
        if isinstance(v, dict):
            for k in v:
                if not isinstance(k, str) or not AGENT_RE.fullmatch(k):
                    raise ValueError(f"agent id {k!r} must be 2-10 digits, quoted")
        return v


def load_agents_file(path: str | Path) -> AgentsFile:
    """Raises ``ConfigError`` naming the file, line and field."""
    agents, _ = load_yaml_model(path, AgentsFile)
    return agents


# ------------------------------------------------------------------ hashing


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode("ascii")


def hash_pin(pin: str, *, salt: bytes | None = None, n: int = SCRYPT_N) -> str:
    """``scrypt$n$r$p$salt$key`` (base64), a fresh random salt each time."""
    salt = secrets.token_bytes(_SALT_BYTES) if salt is None else salt
    key = hashlib.scrypt(
        pin.encode(), salt=salt, n=n, r=SCRYPT_R, p=SCRYPT_P, dklen=_KEY_BYTES, maxmem=64 << 20
    )
    return f"{_SCHEME}${n}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(key)}"


def verify_pin(pin: str, encoded: str) -> bool:
    """True if ``pin`` is the one ``encoded`` was made from; a malformed
    hash verifies nothing. The keys are compared in constant time."""
    try:
        scheme, n_s, r_s, p_s, salt_s, key_s = encoded.split("$")
        n, r, p = int(n_s), int(r_s), int(p_s)
        salt, want = base64.b64decode(salt_s, validate=True), base64.b64decode(key_s, validate=True)
    except ValueError:
        return False
    if scheme != _SCHEME or not (2 <= n <= 2**20 and 1 <= r <= 32 and 1 <= p <= 16) or not want:
        return False
    got = hashlib.scrypt(pin.encode(), salt=salt, n=n, r=r, p=p, dklen=len(want), maxmem=64 << 20)
    return hmac.compare_digest(got, want)


def is_pin_hash(value: str) -> bool:
    return value.startswith(_SCHEME + "$") and value.count("$") == 5


@functools.cache
def dummy_hash() -> str:
    """Verified against when the agent is unknown or has no PIN, so the
    answer takes as long as for a real agent (a phone cannot tell ids
    apart). Made on first use: a scrypt costs ~50 ms, not for every CLI."""
    return hash_pin(secrets.token_hex(8))


# ----------------------------------------------------------------- strength


def _trivial(pin: str) -> bool:
    """One digit repeated, or a run up or down (123456, 987654)."""
    if len(set(pin)) == 1:
        return True
    steps = {(int(b) - int(a)) % 10 for a, b in itertools.pairwise(pin)}
    return steps in ({1}, {9})


def pin_problem(pin: str, *, min_len: int = MIN_PIN_LEN) -> str | None:
    """Why ``pin`` must not be used, or None. The reason never repeats it."""
    if not pin.isascii() or not pin.isdigit():
        return "a PIN is digits only"
    if not min_len <= len(pin) <= MAX_PIN_LEN:
        return f"a PIN is {min_len}-{MAX_PIN_LEN} digits"
    if pin in EXAMPLE_PINS:
        return "this PIN was published as an example"
    if _trivial(pin):
        return "a repeated digit or a run of digits is the first thing tried"
    return None


def file_pin_findings(agents: AgentsFile, hashed: set[str]) -> list[tuple[str, str]]:
    """``(level, message)`` about the clear PINs of the agents file, for
    ``check-config``: ``error`` for a published example or a trivial PIN,
    ``warning`` for a short one, and for every clear PIN (with the command
    that replaces it by a hash). ``hashed``: agents with a PIN in the store
    (their file PIN is ignored)."""
    out: list[tuple[str, str]] = []
    for agent_id, entry in sorted(agents.agents.items()):
        pin = entry.pin
        if pin is None:
            continue
        if agent_id in hashed:
            why = "the pin in this file is ignored (a hashed PIN is set in the store)"
            out.append(("warning", f"agent {agent_id}: {why}; delete the pin line"))
            continue
        if pin in EXAMPLE_PINS or _trivial(pin):
            why = "a published example PIN" if pin in EXAMPLE_PINS else "a trivial PIN"
            fix = f"set a new one with `dialerd agents set-pin {agent_id}`"
            out.append(("error", f"agent {agent_id}: {why}; {fix} and delete the pin line"))
            continue
        if len(pin) < MIN_PIN_LEN:
            out.append(("warning", f"agent {agent_id}: PIN shorter than {MIN_PIN_LEN} digits"))
        fix = f"run `dialerd agents set-pin {agent_id}` (stores a hash)"
        out.append(("warning", f"agent {agent_id}: PIN in clear; {fix} and delete the pin line"))
    return out
