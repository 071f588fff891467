"""A private PostgreSQL for tests and benchmarks: a throwaway cluster in a
temporary directory, on its own loopback port, its unix socket in that
directory, trust authentication for one test role, stopped by its own
postmaster. The machine's PostgreSQL (if any) on 5432 is never used, so a
user's machine and CI behave the same (as the private Mosquitto of
``broker.py``).

PostgreSQL refuses to run as root: as root, ``initdb`` and ``pg_ctl`` run
as the ``postgres`` user the Debian package creates (``runuser``), and the
directory is handed to that user; as anyone else they run as that user.
The binaries: ``$DIALERD_PG_BIN``, else the newest
``/usr/lib/postgresql/<version>/bin`` (Debian's ``postgresql`` package,
which ``./dev setup`` installs), else ``initdb`` on the PATH.

Settings are for speed where it costs no test its meaning: ``fsync=off``
(a commit reaches the kernel, not the disk: it survives the server's own
crash, which a test makes with ``stop()``, not the machine's), but
``synchronous_commit`` stays on: off, a commit returned to the store could
be lost in an immediate stop, and the write-ahead's promise with it.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from dialerd.sandbox.wait import pid_alive

#: the superuser role the tests connect as (trust: no password)
TEST_ROLE = "dialerd"
#: the user a root process runs PostgreSQL as
RUN_AS = "postgres"


class PostgresError(RuntimeError):
    pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_bindir() -> Path:
    """Where ``initdb``, ``pg_ctl`` and ``postgres`` are; raises
    :class:`PostgresError` naming the package when there is none."""
    env = os.environ.get("DIALERD_PG_BIN")
    if env:
        return Path(env)
    versions = sorted(
        (p for p in Path("/usr/lib/postgresql").glob("*/bin") if (p / "initdb").exists()),
        key=lambda p: int(re.sub(r"\D", "", p.parent.name) or 0),
    )
    if versions:
        return versions[-1]
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).resolve().parent
    raise PostgresError(
        "PostgreSQL is not installed (apt-get install postgresql; or set DIALERD_PG_BIN)"
    )


def reap_stale(base: Path) -> list[Path]:
    """Stops and removes the clusters of earlier runs whose owner process is
    gone (a test run killed before its teardown): each is found by the
    ``owner.pid`` this module writes, and stopped through its own data
    directory. Returns the directories removed."""
    removed = []
    for d in sorted(base.glob("dialerd-pg-*")):
        try:
            owner = int((d / "owner.pid").read_text())
        except (OSError, ValueError):
            continue
        if pid_alive(owner):
            continue
        stale = PostgresCluster.__new__(PostgresCluster)
        stale.dir, stale.data, stale.started = d, d / "data", True
        stale.bindir, stale._as = None, []
        try:
            stale.bindir = find_bindir()
            if os.geteuid() == 0 and d.stat().st_uid != 0:
                stale._as = ["runuser", "-u", RUN_AS, "--"]
            if (d / "data" / "postmaster.pid").exists():
                stale.stop()
        except (PostgresError, OSError):
            continue
        shutil.rmtree(d, ignore_errors=True)
        removed.append(d)
    return removed


class PostgresCluster:
    host = "127.0.0.1"

    def __init__(self, port: int | None = None) -> None:
        self.port = port or _free_port()
        # as root, somewhere the postgres user can reach (not a private $TMPDIR)
        base = "/tmp" if os.geteuid() == 0 else None
        self.dir = Path(tempfile.mkdtemp(prefix="dialerd-pg-", dir=base))
        (self.dir / "owner.pid").write_text(str(os.getpid()))
        self.data = self.dir / "data"
        self.log = self.dir / "postgres.log"
        self.bindir: Path | None = None
        self._as: list[str] = []
        self.started = False
        self.startup_seconds = 0.0

    # ------------------------------------------------------------ running

    def _run(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        assert self.bindir is not None
        cmd = [*self._as, str(self.bindir / args[0]), *args[1:]]
        try:
            return subprocess.run(
                cmd,
                check=True,
                capture_output=True,
                text=True,
                timeout=timeout,
                stdin=subprocess.DEVNULL,
                cwd=self.dir,
            )
        except subprocess.CalledProcessError as exc:
            raise PostgresError(
                f"{args[0]} failed ({exc.returncode}): {(exc.stderr or exc.stdout)[-800:]}"
            ) from None
        except subprocess.TimeoutExpired:
            raise PostgresError(f"{args[0]} timed out after {timeout} s") from None

    def start(self, timeout: float = 60.0) -> None:
        """Makes the cluster (the first time) and starts it; after
        :meth:`stop`, starts the same cluster again on the same port."""
        t0 = time.monotonic()
        if (self.data / "PG_VERSION").exists():
            self._pg_ctl_start(timeout)
            self.startup_seconds = time.monotonic() - t0
            return
        self.bindir = find_bindir()
        reap_stale(self.dir.parent)
        if os.geteuid() == 0:
            try:
                pw = pwd.getpwnam(RUN_AS)
            except KeyError:
                raise PostgresError(
                    f"running as root, and there is no {RUN_AS!r} user to run PostgreSQL as "
                    "(apt-get install postgresql creates it)"
                ) from None
            if not shutil.which("runuser"):
                raise PostgresError("running as root, and runuser is missing (util-linux)")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            self._as = ["runuser", "-u", RUN_AS, "--"]
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            TEST_ROLE,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
            "--no-instructions",
        )
        self._pg_ctl_start(timeout)
        self.startup_seconds = time.monotonic() - t0

    def _pg_ctl_start(self, timeout: float) -> None:
        options = " ".join(
            [
                f"-c listen_addresses={self.host}",
                f"-p {self.port}",
                f"-c unix_socket_directories={self.dir}",
                "-c fsync=off",
                "-c full_page_writes=off",
                "-c shared_buffers=32MB",
                "-c max_connections=200",
                "-c max_wal_size=1GB",
                "-c log_min_messages=warning",
            ]
        )
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options,
            "-w", "-t", str(int(timeout)), "start",
            timeout=timeout + 5,
        )  # fmt: skip
        self.started = True

    def stop(self, mode: str = "immediate") -> None:
        """Stops this cluster's own postmaster (``pg_ctl`` reads its pid
        from the data directory); ``immediate``: at once, every connection
        dropped (a crash, as far as clients can tell)."""
        if self.started:
            self.started = False
            try:
                self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")
            except PostgresError:
                pass

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    # ----------------------------------------------------------- databases

    def url(self, database: str = "postgres", **settings: str) -> str:
        """A ``postgresql://`` URL for ``database`` as the test role;
        ``settings`` become session settings (``lock_timeout="100"``)."""
        query = "&".join(f"{k}={v}" for k, v in settings.items())
        return f"postgresql://{TEST_ROLE}@{self.host}:{self.port}/{database}" + (
            f"?{query}" if query else ""
        )

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Runs ``sql`` (one statement) with psql; returns its unaligned output."""
        assert self.bindir is not None
        psql = self.bindir / "psql"
        exe = str(psql) if psql.exists() else (shutil.which("psql") or "psql")
        try:
            out = subprocess.run(
                [exe, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                 "-h", self.host, "-p", str(self.port), "-U", TEST_ROLE, "-d", database,
                 "-c", sql],
                check=True, capture_output=True, text=True, timeout=60,
                stdin=subprocess.DEVNULL,
            )  # fmt: skip
        except subprocess.CalledProcessError as exc:
            raise PostgresError(f"psql: {exc.stderr.strip()}") from None
        return out.stdout

    def create_schema(self, prefix: str = "t") -> str:
        """A new empty schema in the ``postgres`` database; returns its
        name. A store opened on ``self.url(search_path=name)`` keeps every
        table there: a fresh store per test for the price of a schema (a
        few ms; a database is about 0.3 s)."""
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        self.psql(f'CREATE SCHEMA "{name}"')
        return name

    def drop_schema(self, name: str) -> None:
        self.psql(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')

    def create_database(self, prefix: str = "t") -> str:
        """A new empty database; returns its name."""
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        self.psql(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
