"""A private Mosquitto for tests and the soak script: its own loopback port,
its own config, stopped by its own pid. The machine's broker (if any) on 1883
is never used, so a user's machine and CI behave the same."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path


class BrokerError(RuntimeError):
    pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MosquittoBroker:
    host = "127.0.0.1"

    def __init__(self, port: int | None = None, config: str | None = None) -> None:
        """``config``: Mosquitto settings replacing the default
        ``allow_anonymous true`` (authentication, an ACL, more listeners);
        the loopback listener on ``port`` is always there."""
        self.port = port or _free_port()
        self.config = config
        self.dir = Path(tempfile.mkdtemp(prefix="dialerd-mqtt-"))
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> None:
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(exe).exists():
            raise BrokerError("mosquitto is not installed (apt-get install mosquitto)")
        conf = self.dir / "mosquitto.conf"
        extra = "allow_anonymous true\n" if self.config is None else self.config
        conf.write_text(f"{extra}\nlistener {self.port} 127.0.0.1\npersistence false\n")
        self.proc = subprocess.Popen(
            [exe, "-c", str(conf)],
            stdout=(self.dir / "log").open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BrokerError(f"mosquitto exited: {(self.dir / 'log').read_text()[-500:]}")
            try:
                socket.create_connection((self.host, self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise BrokerError("mosquitto did not open its port")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
