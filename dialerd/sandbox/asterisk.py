"""A real Asterisk 22 in a Debian sid chroot, for tests, the demo and benches.

Why a chroot: Debian 12 has no Asterisk package, sid has Asterisk 22, and a
``debootstrap`` tree (~500 MB, ~1 min to build) is cheap to cache outside the
checkout. The chroot shares the host's network, so AMI on a loopback port is
reachable from the host and no container runtime is needed.

Why per-instance directories: every :class:`AsteriskSandbox` gets its own
config, run (control socket), log, spool and lib dirs under
``<root>/var/lib/dialerd-sb/<ami-port>-<random>/``, so two instances (two
test sessions, the workers of a parallel test run, or a test run next to a
demo) never share a control socket or astdb, even if two of them were handed
the same free port one after the other.

The PRODUCTION ``asterisk-conf/`` is copied in unchanged except for what a
sandbox must differ in: ``[directories]``, the AMI port and secrets, the SIP
bind port, and the ``#include`` of the simulated customers/agents dialplan
(``extensions_sim.conf``, never part of production); with ``carrier_port``
also the outbound trunk's address (``trunk-out``'s ``remote_hosts``), so a
simulated carrier on loopback (:mod:`dialerd.sandbox.carrier`) answers the
calls the production trunk places. The daemon logs in as
the production ``dialerd`` AMI user with its production event filters, so
tests exercise the filters the daemon will really see.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from dialerd.sandbox.wait import pid_alive

DEFAULT_ROOT = Path("/var/cache/dialerd/asterisk-sid")
ROOT_ENV = "DIALERD_ASTERISK_ROOT"
CONF_ENV = "DIALERD_ASTERISK_CONF"
#: packages debootstrap installs on top of minbase; the gsm prompts give the
#: safe-harbor default and the simulated greetings something to play, the
#: music-on-hold files the ``default`` class of musiconhold.conf (inbound
#: callers on hold)
DEBOOTSTRAP_INCLUDE = (
    "asterisk,asterisk-modules,asterisk-core-sounds-en-gsm,asterisk-moh-opsound-gsm"
)
#: what a usable tree must hold, per package added after the first builds: a
#: cache built before the package joined DEBOOTSTRAP_INCLUDE gets it installed
#: (file checked inside the tree -> Debian package)
LATER_PACKAGES = {"usr/share/asterisk/moh": "asterisk-moh-opsound-gsm"}
#: inside the chroot: parent of every instance's private directories
INSTANCE_PARENT = "/var/lib/dialerd-sb"
#: the production AMI user (its classes and eventfilters are kept as shipped)
DAEMON_USER = "dialerd"
#: the harness's own user: also gets FullyBooted, used only for readiness
HARNESS_USER = "dialerd-harness"

_PKG_DIR = Path(__file__).resolve().parent
SIM_DIALPLAN = _PKG_DIR / "extensions_sim.conf"
#: agent ids that get a SIP endpoint (agent-phone template) in every sandbox
SIP_AGENTS = tuple(str(a) for a in range(7001, 7011))
#: where a simulated carrier lives. Not 127.0.0.1: PJSIP identifies a
#: request's endpoint by its source address before its username, and the
#: agents' test phones send from 127.0.0.1, so a carrier identified by
#: 127.0.0.1 would take their REGISTERs (Linux routes all of 127/8 to lo).
CARRIER_HOST = "127.0.0.2"


class SandboxError(RuntimeError):
    """Asterisk could not be built, started or reached; the message says why."""


def default_conf_dir() -> Path:
    """``asterisk-conf/`` of this checkout (overridable with $DIALERD_ASTERISK_CONF).

    The production config lives at the repository root, next to the package,
    because operators install it without Python; the harness finds it relative
    to this file so tests always use the config of the same checkout.
    """
    env = os.environ.get(CONF_ENV)
    if env:
        return Path(env)
    return _PKG_DIR.parent.parent / "asterisk-conf"


def _root_usable(root: Path) -> bool:
    return (root / "usr/sbin/asterisk").exists()


def _missing_packages(root: Path) -> list[str]:
    """Packages of :data:`LATER_PACKAGES` whose files the tree lacks."""
    return sorted({pkg for path, pkg in LATER_PACKAGES.items() if not any((root / path).glob("*"))})


def _install_missing(root: Path) -> None:
    """``apt-get install`` the later packages into an existing tree.

    Why not rebuild: the cache survives between runs on a machine, and a
    tree built before a package was added must not need deleting by hand
    (nor a minute of debootstrap). apt inside the chroot uses the tree's own
    sources (the mirror debootstrap chose); no host name is written here.
    """
    missing = _missing_packages(root)
    if not missing:
        return
    if os.geteuid() != 0:
        raise SandboxError(
            f"the Asterisk tree at {root} lacks {', '.join(missing)} and installing "
            "needs root; run as root once (./dev setup)"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (
        # Valid-Until: seen here, a machine clock past the Release file's
        # validity made apt refuse the very lists debootstrap had just used
        ["chroot", str(root), "apt-get", "-o", "Acquire::Check-Valid-Until=false", "update",
         "-qq"],
        ["chroot", str(root), "apt-get", "install", "-y", "-qq", "--no-install-recommends",
         *missing],
    ):  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-20:])
            raise SandboxError(f"{' '.join(cmd[2:])} in {root} failed ({proc.returncode}):\n{tail}")
    still = _missing_packages(root)
    if still:
        raise SandboxError(f"installed {', '.join(still)} into {root} but its files are missing")


def ensure_root(path: Path | None = None) -> Path:
    """Return a chroot with Asterisk in it, building it once if missing.

    The build goes to ``<path>.tmp`` and is renamed only when debootstrap
    succeeded, so an interrupted build never leaves a half tree that looks
    usable; a lock file serialises concurrent builders (two pytest sessions
    starting at once). No mirror argument: debootstrap's default is the one
    this machine's network reaches, and no registry host is written here.
    """
    root = Path(path or os.environ.get(ROOT_ENV) or DEFAULT_ROOT)
    if _root_usable(root) and not _missing_packages(root):
        return root
    if _root_usable(root):
        with open(root.with_name(root.name + ".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # one installer at a time
            _install_missing(root)
        return root
    if os.geteuid() != 0:
        raise SandboxError(
            f"no Asterisk tree at {root} and building one needs root "
            "(debootstrap + chroot); run as root or set "
            f"${ROOT_ENV} to an existing tree"
        )
    debootstrap = shutil.which("debootstrap")
    if debootstrap is None:
        raise SandboxError(
            f"no Asterisk tree at {root} and debootstrap is not installed "
            "(apt-get install debootstrap)"
        )
    root.parent.mkdir(parents=True, exist_ok=True)
    lock_path = root.with_name(root.name + ".lock")
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # waits while another process builds
        if _root_usable(root):  # built by whoever held the lock before us
            _install_missing(root)
            return root
        tmp = root.with_name(root.name + ".tmp")
        if tmp.exists():
            shutil.rmtree(tmp)
        cmd = [
            debootstrap,
            "--variant=minbase",
            f"--include={DEBOOTSTRAP_INCLUDE}",
            "sid",
            str(tmp),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0 or not _root_usable(tmp):
            tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-20:])
            raise SandboxError(f"debootstrap failed ({proc.returncode}):\n{tail}")
        if root.exists():
            shutil.rmtree(root)
        tmp.rename(root)
    return root


def tail_files(paths: Iterable[Path], lines: int, empty: str) -> str:
    """The last ``lines`` of each file that can be read, each under its
    name: what a harness error message shows of a process's output."""
    chunks: list[str] = []
    for p in paths:
        with contextlib.suppress(OSError):
            text = p.read_text(errors="replace").splitlines()[-lines:]
            chunks.append(f"--- {p.name} ---\n" + "\n".join(text))
    return "\n".join(chunks) or empty


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port the kernel says is free on loopback right now (TCP or UDP).

    There is a small window before Asterisk binds it; acceptable for tests,
    and a clash shows up as a clear boot failure with the log tail.
    """
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _module_dir(root: Path) -> str:
    """The chroot's module directory (multiarch path differs per arch)."""
    found = sorted(root.glob("usr/lib/*/asterisk/modules"))
    if not found:
        raise SandboxError(f"no Asterisk modules directory under {root}/usr/lib")
    return "/" + str(found[0].relative_to(root))


def _replace_in_section(text: str, section: str, key: str, value: str) -> str:
    """Set ``key = value`` in ``[section]`` of an Asterisk config (first match).

    A regex over one section keeps the production file's comments intact, so
    the instance's config reads like the shipped one plus a few changed lines.
    """
    out: list[str] = []
    current = None
    done = False
    header = re.compile(r"^\[([^\]]+)\]")
    line_re = re.compile(rf"^\s*{re.escape(key)}\s*=")
    for line in text.splitlines():
        m = header.match(line)
        if m:
            current = m.group(1)
        elif not done and current == section and line_re.match(line):
            line = f"{key} = {value}"
            done = True
        out.append(line)
    if not done:
        raise SandboxError(f"no '{key} =' line in [{section}] to rewrite")
    return "\n".join(out) + "\n"


@dataclass(frozen=True, slots=True)
class AmiCredentials:
    """What an AMI client needs to log in."""

    host: str
    port: int
    username: str
    secret: str


class AsteriskSandbox:
    """One Asterisk process in the chroot, with its own ports and directories.

    Synchronous on purpose: it is used from pytest fixtures (session scope,
    outside any event loop), the CLI and bench scripts. ``start()`` returns
    only when Asterisk is fully booted and the AMI accepts the harness login.
    """

    host = "127.0.0.1"

    def __init__(
        self,
        root: Path | None = None,
        conf_dir: Path | None = None,
        *,
        ami_port: int | None = None,
        sip_port: int | None = None,
        carrier_port: int | None = None,
        carrier_host: str = CARRIER_HOST,
        boot_timeout: float = 30.0,
        keep_files: bool = False,
        instance: str | None = None,
    ) -> None:
        self.root = Path(root or os.environ.get(ROOT_ENV) or DEFAULT_ROOT)
        self.conf_dir = Path(conf_dir or default_conf_dir())
        self.port = ami_port or free_port(socket.SOCK_STREAM)
        self.sip_port = sip_port or free_port(socket.SOCK_DGRAM)
        #: UDP port of a carrier on loopback that ``trunk-out`` sends its
        #: calls to; None keeps the production (documentation) address
        self.carrier_port = carrier_port
        #: the carrier's loopback address: its calls to us are identified as
        #: ``trunk-out`` by this address (any port), so it must not be the
        #: agents' phones' 127.0.0.1
        self.carrier_host = carrier_host
        self.boot_timeout = boot_timeout
        self.keep_files = keep_files or bool(os.environ.get("DIALERD_SANDBOX_KEEP"))
        #: the production AMI user; the daemon logs in with these
        self.username = DAEMON_USER
        self.secret = "t-" + secrets.token_hex(12)
        self.harness_username = HARNESS_USER
        self.harness_secret = "h-" + secrets.token_hex(12)
        #: the SIP password of every agent phone in ``SIP_AGENTS``
        self.sip_secret = "s" + secrets.token_hex(8)
        #: instance directory as seen inside the chroot and from the host
        #: (``instance``: the one of a running sandbox, to reach it again)
        self.instance = instance or f"{INSTANCE_PARENT}/{self.port}-{secrets.token_hex(4)}"
        self.instance_dir = self.root / self.instance.lstrip("/")
        self.asterisk_conf = f"{self.instance}/etc/asterisk.conf"
        self.proc: subprocess.Popen[bytes] | None = None
        self.pid: int | None = None
        #: seconds from exec to FullyBooted of the last start()
        self.startup_seconds: float | None = None

    # -- public API -------------------------------------------------------

    @property
    def ami_user(self) -> AmiCredentials:
        """Credentials of the production ``dialerd`` user (filters included)."""
        return AmiCredentials(self.host, self.port, self.username, self.secret)

    @property
    def harness_user(self) -> AmiCredentials:
        """A broader user for readiness checks; the daemon must not use it."""
        return AmiCredentials(self.host, self.port, self.harness_username, self.harness_secret)

    @property
    def log_path(self) -> Path:
        """Asterisk's `messages` log (host path)."""
        return self.instance_dir / "log" / "messages"

    @property
    def console_path(self) -> Path:
        """Asterisk's stdout/stderr (host path)."""
        return self.instance_dir / "log" / "console.out"

    def start(self) -> None:
        """Write the instance config, run Asterisk, wait for FullyBooted."""
        if self.proc is not None and self.proc.poll() is None:
            return
        ensure_root(self.root)
        self._write_config()
        t0 = time.monotonic()
        log = open(self.console_path, "ab")
        try:
            self.proc = subprocess.Popen(
                ["chroot", str(self.root), "asterisk", "-C", self.asterisk_conf, "-f", "-n"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # own session: Ctrl-C in a test run reaches pytest, which then
                # stops Asterisk cleanly, and the CLI's `start` can outlive us
                start_new_session=True,
            )
        finally:
            log.close()
        self.pid = self.proc.pid  # chroot execs asterisk: same pid
        try:
            self._wait_fully_booted(t0 + self.boot_timeout)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - t0

    def stop(self, *, cleanup: bool | None = None) -> None:
        """``core stop now``, then SIGTERM, then SIGKILL, by our own pid only."""
        pid = self.pid
        if pid is not None and _alive(pid, self.proc):
            # Seen on 22.10: after an Originate refused for a duplicate
            # ChannelId, `core stop now` never returns and SIGTERM does not
            # end the process either; only SIGKILL does. Hence short waits.
            stopped_by_cli = True
            try:
                self.cli("core stop now", timeout=5.0)
            except (SandboxError, subprocess.TimeoutExpired):
                stopped_by_cli = False
            steps = (
                (None, 5.0 if stopped_by_cli else 0.0),
                (signal.SIGTERM, 2.0),
                (signal.SIGKILL, 5.0),
            )
            for sig, wait in steps:
                if sig is not None:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, sig)
                if _wait_exit(pid, self.proc, wait):
                    break
        self.proc = None
        self.pid = None
        if cleanup if cleanup is not None else not self.keep_files:
            shutil.rmtree(self.instance_dir, ignore_errors=True)

    def restart(self) -> None:
        """Stop and start again on the SAME ports and secrets.

        A daemon under test keeps its configuration across the restart, so
        reconnect logic is tested against what a real Asterisk restart does.
        """
        self.stop(cleanup=False)
        self.start()

    def running(self) -> bool:
        """True while our Asterisk process is alive."""
        return self.pid is not None and _alive(self.pid, self.proc)

    def cli(self, command: str, timeout: float = 10.0) -> str:
        """Run one CLI command through the instance's control socket (``-rx``)."""
        proc = subprocess.run(
            ["chroot", str(self.root), "asterisk", "-C", self.asterisk_conf, "-rx", command],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if proc.returncode != 0:
            raise SandboxError(f"asterisk -rx {command!r} failed: {proc.stderr.strip()}")
        return proc.stdout

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of Asterisk's output, for error messages."""
        return tail_files((self.console_path, self.log_path), lines, "(no Asterisk output)")

    def __enter__(self) -> AsteriskSandbox:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- internals --------------------------------------------------------

    def _write_config(self) -> None:
        if not self.conf_dir.is_dir():
            raise SandboxError(f"Asterisk config directory {self.conf_dir} not found")
        if self.instance_dir.exists():
            shutil.rmtree(self.instance_dir)
        etc = self.instance_dir / "etc"
        for sub in ("run", "log", "spool", "lib"):
            (self.instance_dir / sub).mkdir(parents=True, exist_ok=True)
        shutil.copytree(self.conf_dir, etc)
        shutil.copy(SIM_DIALPLAN, etc / SIM_DIALPLAN.name)

        inst = self.instance
        directories = "\n".join(
            [
                "[directories]",
                f"astetcdir => {inst}/etc",
                f"astmoddir => {_module_dir(self.root)}",
                f"astvarlibdir => {inst}/lib",
                f"astdbdir => {inst}/lib",
                f"astkeydir => {inst}/lib",
                "astdatadir => /usr/share/asterisk",
                "astagidir => /usr/share/asterisk/agi-bin",
                f"astspooldir => {inst}/spool",
                f"astrundir => {inst}/run",
                f"astlogdir => {inst}/log",
                "astsbindir => /usr/sbin",
                "",
            ]
        )
        ast_conf = (etc / "asterisk.conf").read_text()
        # drop the production [directories] section, keep [options] and the rest
        ast_conf = re.sub(r"(?ms)^\[directories\].*?(?=^\[)", "", ast_conf)
        (etc / "asterisk.conf").write_text(directories + "\n" + ast_conf)

        mgr = (etc / "manager.conf").read_text()
        mgr = _replace_in_section(mgr, "general", "port", str(self.port))
        mgr = _replace_in_section(mgr, "general", "bindaddr", self.host)
        mgr = _replace_in_section(mgr, DAEMON_USER, "secret", self.secret)
        mgr += (
            "\n; --- added by the sandbox harness: readiness checks only ---\n"
            f"[{HARNESS_USER}]\n"
            f"secret = {self.harness_secret}\n"
            "deny = 0.0.0.0/0.0.0.0\n"
            "permit = 127.0.0.1/255.255.255.255\n"
            "read = system,call,user,agent,reporting\n"
            "write = originate,call,reporting\n"
        )
        (etc / "manager.conf").write_text(mgr)

        pjsip = (etc / "pjsip.conf").read_text()
        pjsip = _replace_in_section(pjsip, "transport-udp", "bind", f"127.0.0.1:{self.sip_port}")
        (etc / "pjsip.conf").write_text(pjsip)
        if self.carrier_port is not None:
            # the production trunk, pointed at the simulated carrier: only
            # its addresses change (where calls go, and whose calls are the
            # carrier's), every other line is as shipped
            wizard = etc / "pjsip_wizard.conf"
            text = _replace_in_section(
                wizard.read_text(),
                "trunk-out",
                "remote_hosts",
                f"{self.carrier_host}:{self.carrier_port}",
            )
            text = _replace_in_section(text, "trunk-out", "identify/match", self.carrier_host)
            wizard.write_text(text)
        # SIP agent phones for the real-softphone tests, from the production
        # template, exactly as README tells an admin to add one
        with open(etc / "pjsip_wizard.conf", "a") as f:
            f.write("\n; --- added by the sandbox harness: SIP agents for tests ---\n")
            for agent in SIP_AGENTS:
                f.write(
                    f"[{agent}](agent-phone)\n"
                    f"inbound_auth/username = {agent}\n"
                    f"inbound_auth/password = {self.sip_secret}\n"
                )

        with open(etc / "extensions.conf", "a") as f:
            f.write(f"\n; --- added by the sandbox harness ---\n#include {SIM_DIALPLAN.name}\n")

    def _wait_fully_booted(self, deadline: float) -> None:
        """Log in as the harness user and read until FullyBooted arrives."""
        last_error = "AMI port never opened"
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise SandboxError(
                    f"Asterisk exited with {self.proc.returncode} during boot\n" + self.log_tail()
                )
            try:
                if _ami_fully_booted(self.harness_user, deadline):
                    return
                last_error = "AMI closed before FullyBooted"
            except OSError as exc:
                last_error = f"AMI: {exc}"
            except SandboxError as exc:
                raise SandboxError(f"{exc}\n{self.log_tail()}") from None
            time.sleep(0.1)
        raise SandboxError(
            f"Asterisk not fully booted within {self.boot_timeout:.0f} s ({last_error})\n"
            + self.log_tail()
        )


def _alive(pid: int, proc: subprocess.Popen[bytes] | None) -> bool:
    if proc is not None:
        return proc.poll() is None
    return pid_alive(pid)


def _wait_exit(pid: int, proc: subprocess.Popen[bytes] | None, timeout: float) -> bool:
    if proc is not None:
        try:
            proc.wait(timeout)
            return True
        except subprocess.TimeoutExpired:
            return False
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if not _alive(pid, None):
            return True
        time.sleep(0.05)
    return False


def _read_messages(sock: socket.socket, deadline: float) -> Iterator[dict[str, str]]:
    """Yield AMI messages (header dicts) until the socket closes or time is up."""
    buf = b""
    while True:
        while b"\r\n\r\n" in buf:
            raw, buf = buf.split(b"\r\n\r\n", 1)
            msg: dict[str, str] = {}
            for line in raw.decode(errors="replace").split("\r\n"):
                key, sep, value = line.partition(":")
                if sep:
                    msg.setdefault(key.strip(), value.strip())
            yield msg
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        sock.settimeout(remaining)
        try:
            data = sock.recv(65536)
        except TimeoutError:
            return
        if not data:
            return
        buf += data


def _ami_fully_booted(cred: AmiCredentials, deadline: float) -> bool:
    """True once a login is accepted and FullyBooted is seen on that session.

    A plain socket, not panoramisk: this runs outside any event loop, and a
    wrong secret must be an error here rather than a silent reconnect loop.
    """
    with socket.create_connection((cred.host, cred.port), timeout=2.0) as sock:
        sock.sendall(
            (
                "Action: Login\r\nActionID: boot\r\n"
                f"Username: {cred.username}\r\nSecret: {cred.secret}\r\n\r\n"
            ).encode()
        )
        for msg in _read_messages(sock, deadline):
            if msg.get("ActionID") == "boot" and msg.get("Response") == "Error":
                raise SandboxError(f"AMI login refused: {msg.get('Message')}")
            if msg.get("Event") == "FullyBooted":
                with contextlib.suppress(OSError):
                    sock.sendall(b"Action: Logoff\r\n\r\n")
                return True
    return False
