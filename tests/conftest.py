"""Shared pytest fixtures. Each section belongs to one area; add yours below."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from dialerd.sandbox.asterisk import AsteriskSandbox, SandboxError

REPO = Path(__file__).resolve().parents[1]

# ===========================================================================
# Real Asterisk sandbox (dialerd.sandbox) -- owner: Asterisk-side harness
#
# One Asterisk for the whole session: boot takes well under a second once the
# chroot exists, but building the chroot (first run on a machine) takes about
# a minute. When Asterisk cannot be built or started, CI must fail loudly
# (a skipped integration suite looks green), while a developer's laptop
# without root or debootstrap just skips the tests that need it.
# ===========================================================================


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


@pytest.fixture(scope="session")
def asterisk_sandbox() -> Iterator[AsteriskSandbox]:
    """A running :class:`dialerd.sandbox.AsteriskSandbox` (session scope).

    Tests using it must be marked ``@pytest.mark.asterisk``. Connect the code
    under test with ``sandbox.ami_user`` (the production ``dialerd`` user,
    production event filters included).
    """
    sandbox = AsteriskSandbox()
    try:
        sandbox.start()
    except (SandboxError, OSError) as exc:
        reason = f"real Asterisk unavailable: {exc}"
        if _in_ci():
            pytest.fail(reason, pytrace=False)
        print(f"\nSKIP: {reason}")
        pytest.skip(reason)
    print(f"\nAsterisk sandbox up in {sandbox.startup_seconds:.2f} s on AMI port {sandbox.port}")
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
        reason = f"real MQTT broker unavailable: {exc}"
        if _in_ci():
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    try:
        yield broker
    finally:
        broker.close()


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
