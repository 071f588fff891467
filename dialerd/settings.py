"""Daemon settings from ``dialerd.yaml``.

Validated as strictly as the campaigns (unknown keys are errors: a misspelt
``drain_timeout_s`` silently falling back to its default is a surprise at
the worst moment), with the same file:line: field: message errors.

Relative paths are resolved against the directory of the settings file, not
the working directory, so ``dialerd -c /etc/dialerd/dialerd.yaml`` behaves
the same from systemd, cron or a shell.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from dialerd.campaign.loader import Site, load_yaml_model
from dialerd.campaign.model import TRUNK_NAME_RE, check_trunk_template

#: what AMI accepts in a Username header without quoting games
_AMI_USER_PATTERN = r"^[A-Za-z0-9_.@-]{1,64}$"


def _resolve(value: Path, info: ValidationInfo) -> Path:
    base = (info.context or {}).get("base_dir")
    if value.is_absolute() or base is None:
        return value
    return Path(base) / value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AmiSettings(BaseModel):
    """Not frozen: the validator replaces ``secret`` with the content of
    ``secret_file`` so the rest of the daemon reads one field."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field(default="127.0.0.1", min_length=1)
    port: int = Field(default=5038, ge=1, le=65535)
    username: str = Field(pattern=_AMI_USER_PATTERN)
    #: never printed: SecretStr shows as '**********' in repr and logs. Always
    #: set after validation (from ``secret_file`` if that was given), so the
    #: type is not Optional; empty means "not given".
    secret: SecretStr = SecretStr("")
    #: read once at load time (before privileges could be dropped)
    secret_file: Path | None = None
    action_timeout_s: float = Field(default=10.0, gt=0, le=300)
    connect_timeout_s: float = Field(default=10.0, gt=0, le=300)

    @field_validator("secret_file")
    @classmethod
    def _secret_file_readable(cls, v: Path | None, info: ValidationInfo) -> Path | None:
        if v is None:
            return None
        path = _resolve(v, info)
        if not path.is_file() or not os.access(path, os.R_OK):
            raise ValueError(f"cannot read {path}")
        return path

    @model_validator(mode="after")
    def _exactly_one_secret(self) -> AmiSettings:
        if bool(self.secret.get_secret_value()) == (self.secret_file is not None):
            raise ValueError("give exactly one of secret or secret_file")
        if self.secret_file is not None:
            try:
                text = self.secret_file.read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as exc:
                raise ValueError(f"secret_file: cannot read {self.secret_file}: {exc}") from None
            if not text:
                raise ValueError(f"secret_file {self.secret_file} is empty")
            self.secret = SecretStr(text)
        return self

    def secret_value(self) -> str:
        """The AMI password, for the login action only."""
        return self.secret.get_secret_value()


#: the URL schemes that choose the PostgreSQL store
POSTGRES_SCHEMES = ("postgresql://", "postgres://")


class StoreSettings(_Strict):
    """Where the store is: a SQLite file (``path``, the default) or, with
    ``url``, a PostgreSQL database (``postgresql://user@host:port/db``; a
    password belongs in ``~/.pgpass`` or ``PGPASSWORD``, not here)."""

    path: Path = Path("/var/lib/dialerd/dialerd.sqlite3")
    url: str | None = None

    @field_validator("path")
    @classmethod
    def _path(cls, v: Path, info: ValidationInfo) -> Path:
        return v if str(v) == ":memory:" else _resolve(v, info)

    @field_validator("url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(POSTGRES_SCHEMES):
            raise ValueError("must be a postgresql://user@host:port/database URL")
        return v

    @model_validator(mode="after")
    def _one_store(self) -> StoreSettings:
        if self.url is not None and "path" in self.model_fields_set:
            raise ValueError("set either path (SQLite) or url (PostgreSQL), not both")
        return self

    @property
    def backend(self) -> Literal["sqlite", "postgresql"]:
        return "sqlite" if self.url is None else "postgresql"

    def describe(self) -> str:
        """The store for a log line or an error: the file, or the URL
        without its password."""
        if self.url is None:
            return str(self.path)
        return re.sub(r"(//[^:/@]*):[^@/]*@", r"\1:***@", self.url)


class LogSettings(_Strict):
    #: auto: console on a terminal, JSON otherwise (journald, docker)
    format: Literal["auto", "json", "console"] = "auto"
    level: Literal["debug", "info", "warning", "error"] = "info"

    @field_validator("level", mode="before")
    @classmethod
    def _lower(cls, v: Any) -> Any:
        return v.lower() if isinstance(v, str) else v


class MqttSettings(_Strict):
    """Live state and supervisor commands over MQTT. Off by default: a
    dialer must dial whether or not a broker exists."""

    enabled: bool = False
    host: str = Field(default="127.0.0.1", min_length=1)
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    #: TLS to the broker; ``ca_file`` None uses the system's trust store
    tls: bool = False
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    #: every topic starts with this (one dialerd per prefix)
    topic_prefix: str = Field(default="dialerd", pattern=r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$")
    #: seconds between retained campaign-state publications
    state_interval_s: float = Field(default=1.0, gt=0, le=60)
    #: events kept while the broker is away (oldest dropped first)
    queue_size: int = Field(default=10000, ge=10, le=1_000_000)


class MetricsSettings(_Strict):
    """Prometheus endpoint: off by default, loopback by default."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(default=9108, ge=1, le=65535)


class AgiSettings(_Strict):
    """The daemon's FastAGI server: the login dialplan runs
    ``AGI(agi://${DIALER_AGI}/login,<agent>)`` and the daemon asks for the
    PIN on that socket, so the digits never reach the dialplan, AMI or a log.
    The daemon sets the ``DIALER_AGI`` global (host:port) on every AMI login.
    Serves when ``agents_file`` is set (script ``login``) or ``queues_dir``
    is a directory (script ``inbound``)."""

    #: where the server listens; loopback unless Asterisk runs elsewhere
    host: str = Field(default="127.0.0.1", min_length=1)
    #: 0: a free port the kernel picks (tests); the dialplan is told
    port: int = Field(default=4573, ge=0, le=65535)
    #: what Asterisk dials (host[:port]); default: host and the bound port
    announce: str | None = Field(default=None, pattern=r"^[A-Za-z0-9.:\[\]-]{1,100}$")
    #: peers allowed to connect (Asterisk's addresses); others are dropped
    allow: list[str] = Field(default_factory=lambda: ["127.0.0.1", "::1"])
    #: at most this many logins at once (each holds a socket and a thread
    #: while its PIN is hashed)
    max_sessions: int = Field(default=50, ge=1, le=10000)


class Settings(_Strict):
    ami: AmiSettings
    agi: AgiSettings = Field(default_factory=AgiSettings)
    mqtt: MqttSettings = Field(default_factory=MqttSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    campaigns_dir: Path = Path("/etc/dialerd/campaigns")
    #: inbound queue files (``dialerd.campaign.queues``); a directory that
    #: does not exist means no queues. Read at start and on SIGHUP
    queues_dir: Path = Path("/etc/dialerd/queues")
    log: LogSettings = Field(default_factory=LogSettings)
    #: on SIGTERM, stop dialing and wait this long for live calls to end
    drain_timeout_s: float = Field(default=120.0, ge=0, le=3600)
    #: Unix socket for ``dialerd status`` and ``dialerd campaign pause``
    #: (systemd's RuntimeDirectory=dialerd creates /run/dialerd)
    control_socket: Path = Path("/run/dialerd/control.sock")
    #: do-not-call requests kept until the store has them (survives a
    #: SIGKILL during a store outage); None: ``dnc-journal.jsonl`` beside the
    #: control socket, in the runtime directory (``dialerd.daemon.dncjournal``)
    dnc_journal: Path | None = None
    #: the core's Tick period: retry timers and pacing re-evaluation
    tick_s: float = Field(default=0.2, gt=0, le=5)
    #: agents and their PINs (``dialerd.agents``); None: no agent can log
    #: in by phone (simulated agents and the demo do not need it)
    agents_file: Path | None = None
    #: the trunks campaigns may dial through, by name: campaign files say
    #: ``trunk: <name>`` and never hold a channel template themselves
    trunks: dict[str, str] = Field(default_factory=dict)
    #: legal limits lifted per campaign (``ring_timeout``,
    #: ``abandon_target``, ``legal_window``): the admin's decision, never the
    #: campaign file's; every call placed under one is logged
    legal_overrides: dict[str, list[Literal["ring_timeout", "abandon_target", "legal_window"]]] = (
        Field(default_factory=dict)
    )
    #: what an agent's pause key '**' + code means (codes 1-9)
    pause_reasons: dict[int, str] = Field(
        default_factory=lambda: {
            1: "break",
            2: "lunch",
            3: "meeting",
            4: "training",
            5: "coaching",
            9: "other",
        }
    )

    @field_validator("campaigns_dir")
    @classmethod
    def _campaigns_dir(cls, v: Path, info: ValidationInfo) -> Path:
        return _resolve(v, info)

    @field_validator("queues_dir")
    @classmethod
    def _queues_dir(cls, v: Path, info: ValidationInfo) -> Path:
        path = _resolve(v, info)
        if path == info.data.get("campaigns_dir"):
            raise ValueError("must not be campaigns_dir: a queue file is not a campaign file")
        return path

    @field_validator("agents_file")
    @classmethod
    def _agents_file(cls, v: Path | None, info: ValidationInfo) -> Path | None:
        return None if v is None else _resolve(v, info)

    @field_validator("trunks")
    @classmethod
    def _trunks(cls, v: dict[str, str]) -> dict[str, str]:
        for name, template in v.items():
            if not TRUNK_NAME_RE.fullmatch(name):
                raise ValueError(f"trunk name {name!r}: 1-32 of a-z 0-9 _ -, starting a-z 0-9")
            try:
                check_trunk_template(template)
            except ValueError as exc:
                raise ValueError(f"trunk {name!r}: {exc}") from None
        return v

    def site(self) -> Site:
        """What campaign files are bound to when loaded (trunks, overrides)."""
        return Site(
            trunks=dict(self.trunks),
            overrides={c: frozenset(o) for c, o in self.legal_overrides.items()},
        )

    @field_validator("pause_reasons")
    @classmethod
    def _reasons(cls, v: dict[int, str]) -> dict[int, str]:
        for code, name in v.items():
            if not 1 <= code <= 9:
                raise ValueError(f"pause reason code {code} must be 1-9 (the key after '**')")
            if not re.fullmatch(r"[a-z0-9_-]{1,32}", name):
                raise ValueError(f"pause reason {name!r}: 1-32 of a-z 0-9 _ -")
        return v


#: passwords that ship as examples (config/dialerd.yaml) or that anyone
#: would guess: a daemon must not run with one of them
PLACEHOLDER_SECRETS = frozenset({"change-me", "changeme", "secret", "password", "dialerd"})


def _loose_mode(path: Path) -> str | None:
    """Why a file holding a secret is too open, or None."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    if mode & 0o004:
        return f"{path} is readable by every user (mode {mode & 0o777:04o}); chmod 0640 or 0600"
    if mode & 0o022:
        return f"{path} is writable by others (mode {mode & 0o777:04o}); chmod 0640 or 0600"
    return None


def security_findings(settings: Settings) -> list[tuple[str, str]]:
    """``(level, message)`` for ``check-config`` and ``run``: an ``error``
    (a shipped placeholder password) stops the daemon; a ``warning`` (a
    secret file others can read) is printed."""
    out: list[tuple[str, str]] = []
    if settings.ami.secret_value().strip().lower() in PLACEHOLDER_SECRETS:
        out.append(
            (
                "error",
                "ami.secret is a placeholder: set the AMI user's real secret "
                "(better: secret_file, mode 0600)",
            )
        )
    pw = settings.mqtt.password
    if (
        settings.mqtt.enabled
        and pw is not None
        and (pw.get_secret_value().strip().lower() in PLACEHOLDER_SECRETS)
    ):
        out.append(("error", "mqtt.password is a placeholder: set the broker user's password"))
    for path in (settings.ami.secret_file, settings.agents_file):
        if path is not None and (why := _loose_mode(path)) is not None:
            out.append(("warning", why))
    return out


def load_settings(path: str | Path) -> Settings:
    """Raises :class:`dialerd.campaign.loader.ConfigError` (or ``ConfigErrors``)."""
    base = Path(path).parent
    settings, _ = load_yaml_model(path, Settings, context={"base_dir": base})
    return settings
