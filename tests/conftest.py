"""Shared pytest fixtures. Each section belongs to one area; add yours below.

The suite runs in parallel (pytest-xdist, ``./dev test``): every fixture
here is per worker or per test, with its own ports and directories, so a
test never sees another test's Asterisk, broker, store or files.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import NoReturn, Protocol, TypeVar

import pytest

from dialerd.sandbox.asterisk import AsteriskSandbox, SandboxError
from dialerd.sandbox.postgres import PostgresCluster, PostgresError
from dialerd.sandbox.stores import STORE_BACKENDS, StoreBackend, make_backend
from dialerd.store.api import StoreApi

REPO = Path(__file__).resolve().parents[1]


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def _unavailable(reason: str, say: bool = True) -> NoReturn:
    """A real service a test needs cannot be had: fail under CI (a skipped
    suite looks green), else skip, printing why (``say``)."""
    if _in_ci():
        pytest.fail(reason, pytrace=False)
    if say:
        print(f"\nSKIP: {reason}")
    pytest.skip(reason)


# ===========================================================================
# Parallel runs (pytest-xdist, ``./dev test``)
#
# The run takes as long as its longest worker. The few tests marked ``slow``
# (real-time campaigns of a minute or two) go first, one per worker, each
# paired with a quick one, so they never queue behind one another; the rest
# keep their order. With ``--dist load --maxschedchunk 1`` a worker is handed
# its next test only when it has finished one. A serial run keeps file order.
# ===========================================================================


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return
    slow = [it for it in items if it.get_closest_marker("slow")]
    rest = [it for it in items if not it.get_closest_marker("slow")]
    order: list[pytest.Item] = []
    for k, it in enumerate(slow):
        order.append(it)
        order.extend(rest[k : k + 1])
    order.extend(rest[len(slow) :])
    items[:] = order  # the same in every worker: xdist compares the lists


# ===========================================================================
# Real Asterisk sandbox (dialerd.sandbox) -- owner: Asterisk-side harness
#
# One Asterisk per test session, and under xdist one per WORKER (a session
# fixture runs once in each worker process): boot takes well under a second
# once the chroot exists, but building the chroot (first run on a machine)
# takes about a minute, behind a lock, so workers that start together build
# it once. Each instance has its own AMI and SIP ports and its own
# directories inside the chroot. When Asterisk cannot be built or started,
# CI must fail loudly, in every worker (a skipped integration suite looks
# green), while a developer's laptop without root or debootstrap just skips
# the tests that need it.
# ===========================================================================

#: boots tried before giving up: a free port can be taken by another process
#: between the kernel naming it and Asterisk binding it (several sandboxes
#: start at once in a parallel run); a fresh sandbox gets fresh ports
_BOOT_TRIES = 3


class _Service(Protocol):
    def start(self) -> None: ...


S = TypeVar("S", bound=_Service)


def _boot(
    make: Callable[[], S],
    errors: tuple[type[Exception], ...],
    hopeless: Callable[[Exception], bool] = lambda _: False,
    discard: Callable[[S], None] = lambda _: None,
) -> S:
    """``make()`` a service and start it; a fresh one (fresh ports) for each
    of ``_BOOT_TRIES`` tries, unless the failure is ``hopeless``; raises the
    last one's error. ``discard`` cleans up after a failed start."""
    for tries_left in reversed(range(_BOOT_TRIES)):
        service = make()
        try:
            service.start()
        except errors as exc:
            discard(service)
            if tries_left == 0 or hopeless(exc):
                raise
        else:
            return service
    raise AssertionError("unreachable")


def _boot_sandbox() -> AsteriskSandbox:
    """A started sandbox; no tree, no debootstrap, no root: another try
    cannot help."""
    return _boot(AsteriskSandbox, (SandboxError,), lambda e: "no Asterisk tree" in str(e))


@pytest.fixture(scope="session")
def asterisk_sandbox() -> Iterator[AsteriskSandbox]:
    """A running :class:`dialerd.sandbox.AsteriskSandbox` (one per worker).

    Tests using it must be marked ``@pytest.mark.asterisk``. Connect the code
    under test with ``sandbox.ami_user`` (the production ``dialerd`` user,
    production event filters included).
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    try:
        sandbox = _boot_sandbox()
    except (SandboxError, OSError) as exc:
        _unavailable(f"real Asterisk unavailable (worker {worker}): {exc}")
    print(
        f"\nAsterisk sandbox (worker {worker}) up in {sandbox.startup_seconds:.2f} s "
        f"on AMI port {sandbox.port}"
    )
    try:
        yield sandbox
    finally:
        sandbox.stop()


@pytest.fixture
def own_sandbox() -> Iterator[AsteriskSandbox]:
    """A private Asterisk (sub-second boot) for a test that disturbs it
    (restarts, crashes, a refused duplicate ChannelId), so the worker's
    shared one stays clean. Unavailable: fails in CI, skips elsewhere."""
    try:
        sandbox = _boot_sandbox()
    except (SandboxError, OSError) as exc:
        _unavailable(f"real Asterisk unavailable: {exc}", say=False)
    try:
        yield sandbox
    finally:
        sandbox.stop()


@pytest.fixture
def trunk_sandbox() -> Iterator[AsteriskSandbox]:
    """A private Asterisk whose ``trunk-out`` takes the sipp carrier's calls
    (``carrier_port``: the carrier's address is then 127.0.0.2, apart from
    the agents' phones on 127.0.0.1), with sipp and its DTMF recordings
    checked. Unavailable: fails in CI, skips elsewhere."""
    from dialerd.sandbox.caller import SippCaller
    from dialerd.sandbox.carrier import CarrierError, free_udp_port

    try:
        sandbox = _boot(
            lambda: AsteriskSandbox(carrier_port=free_udp_port("127.0.0.2")),
            (SandboxError,),
            lambda e: "no Asterisk tree" in str(e),
        )
    except (SandboxError, OSError) as exc:
        _unavailable(f"real Asterisk unavailable: {exc}", say=False)
    try:
        SippCaller(sandbox.sip_port, "+442071230000", "+442079460000")
    except (CarrierError, OSError) as exc:
        sandbox.stop()
        _unavailable(f"sipp unavailable: {exc}", say=False)
    try:
        yield sandbox
    finally:
        sandbox.stop()


# ===========================================================================
# (end of the Asterisk sandbox section)
# ===========================================================================


# ===========================================================================
# Real MQTT broker (dialerd.sandbox.broker) -- a private Mosquitto per test
# ===========================================================================


@pytest.fixture
def mqtt_broker() -> Iterator[object]:
    from dialerd.sandbox.broker import BrokerError, MosquittoBroker

    broker = MosquittoBroker()
    try:
        broker.start()
    except BrokerError as exc:
        _unavailable(f"real MQTT broker unavailable: {exc}", say=False)
    try:
        yield broker
    finally:
        broker.close()


# ===========================================================================
# A private PostgreSQL (dialerd.sandbox.postgres) -- one cluster per worker
#
# A throwaway cluster (initdb in a temp dir, a free loopback port, trust
# auth for the test role), started once per session, so once per xdist
# worker, and only when a test asks for it; each test gets its own schema
# in it (``store_backend``) or its own database. Like Asterisk: with
# CI=true a test that cannot get PostgreSQL fails; locally it skips and
# prints why.
# ===========================================================================


def _start_cluster() -> PostgresCluster:
    return _boot(PostgresCluster, (PostgresError, OSError), discard=PostgresCluster.close)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PostgresCluster]:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    try:
        cluster = _start_cluster()
    except (PostgresError, OSError) as exc:
        _unavailable(f"real PostgreSQL unavailable (worker {worker}): {exc}")
    print(
        f"\nPostgreSQL cluster (worker {worker}) up in {cluster.startup_seconds:.2f} s "
        f"on port {cluster.port}"
    )
    try:
        yield cluster
    finally:
        cluster.close()


# ===========================================================================
# The store, on every backend (dialerd.store)
#
# Store tests take ``store_backend`` (or ``store``, an empty store opened on
# it) and run once per backend, as one contract: SQLite, and PostgreSQL on
# the worker's private cluster (``pg_cluster``, started on the first
# PostgreSQL test). Everything is opened through
# ``dialerd.store.open_store``, as the daemon opens it.
# ===========================================================================


def _backend(name: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreBackend]:
    cluster = request.getfixturevalue("pg_cluster") if name == "postgresql" else None
    backend = make_backend(name, tmp_path, cluster)
    try:
        yield backend
    finally:
        backend.close()


@pytest.fixture(params=STORE_BACKENDS)
def store_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreBackend]:
    """A fresh, empty database on one backend (the test runs on each)."""
    yield from _backend(str(request.param), request, tmp_path)


@pytest.fixture
def pg_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreBackend]:
    """A fresh, empty PostgreSQL store database (a schema of the worker's
    cluster), for tests of what only PostgreSQL has."""
    yield from _backend("postgresql", request, tmp_path)


@pytest.fixture
async def store(store_backend: StoreBackend) -> AsyncIterator[StoreApi]:
    """An empty store, opened (and migrated) on ``store_backend``."""
    s = await store_backend.open()
    try:
        yield s
    finally:
        await s.close()


# ===========================================================================
# The shipped config/ as an admin would install it
# ===========================================================================


@pytest.fixture
def shipped_config(tmp_path: Path) -> Path:
    """A copy of ``config/`` with what an admin must change changed: the AMI
    placeholder secret (``check-config`` and ``run`` refuse it), the store
    path (into ``tmp_path``) and the agents file's mode (0640, as the README
    says). Returns the copied ``dialerd.yaml``."""
    shutil.copytree(REPO / "config", tmp_path / "config")
    p = tmp_path / "config" / "dialerd.yaml"
    text = p.read_text().replace("/var/lib/dialerd/dialerd.sqlite3", str(tmp_path / "d.sqlite3"))
    p.write_text(text.replace('secret: "change-me"', 'secret: "s3cr3t-for-tests-only-9f2"'))
    (tmp_path / "config" / "agents.yaml").chmod(0o640)
    return p
