"""``python -m dialerd.sandbox {build,start,stop,status}``: a sandbox for humans.

``start`` leaves Asterisk running after the command returns (for the demo or
a manual session with the daemon) and records how to reach and stop it in a
state file inside the chroot; ``stop`` stops that instance by its pid only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from dialerd.sandbox.asterisk import (
    DEFAULT_ROOT,
    INSTANCE_PARENT,
    ROOT_ENV,
    AsteriskSandbox,
    SandboxError,
    ensure_root,
)


def _state_file(root: Path) -> Path:
    return root / INSTANCE_PARENT.lstrip("/") / "cli-instance.json"


def _load(root: Path) -> dict[str, object] | None:
    try:
        data: dict[str, object] = json.loads(_state_file(root).read_text())
    except (OSError, ValueError):
        return None
    return data


def _sandbox_from_state(root: Path, st: dict[str, object]) -> AsteriskSandbox:
    conf = str(st.get("asterisk_conf", ""))
    # the instance directory is the config's grandparent (<instance>/etc/asterisk.conf)
    instance = str(Path(conf).parent.parent) if conf else None
    sb = AsteriskSandbox(
        root,
        ami_port=int(str(st["port"])),
        sip_port=int(str(st["sip_port"])),
        instance=instance,
    )
    sb.pid = int(str(st["pid"]))
    sb.secret = str(st["secret"])
    return sb


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    ap = argparse.ArgumentParser(prog="python -m dialerd.sandbox", description=__doc__)
    ap.add_argument("command", choices=["build", "start", "stop", "status"])
    ap.add_argument("--root", type=Path, default=None, help=f"chroot (${ROOT_ENV}, {DEFAULT_ROOT})")
    ap.add_argument("--conf", type=Path, default=None, help="asterisk-conf directory")
    ap.add_argument("--ami-port", type=int, default=None)
    args = ap.parse_args(argv)
    root = Path(args.root or os.environ.get(ROOT_ENV) or DEFAULT_ROOT)
    try:
        if args.command == "build":
            print(ensure_root(root))
            return 0
        st = _load(root)
        if args.command == "start":
            if st is not None and _sandbox_from_state(root, st).running():
                print(f"already running: pid {st['pid']}, AMI port {st['port']}", file=sys.stderr)
                return 1
            sb = AsteriskSandbox(root, args.conf, ami_port=args.ami_port, keep_files=True)
            sb.start()
            state = {
                "pid": sb.pid,
                "host": sb.host,
                "port": sb.port,
                "sip_port": sb.sip_port,
                "username": sb.username,
                "secret": sb.secret,
                "asterisk_conf": sb.asterisk_conf,
                "startup_seconds": round(sb.startup_seconds or 0.0, 3),
            }
            _state_file(root).write_text(json.dumps(state, indent=2))
            print(json.dumps(state, indent=2))
            return 0
        if st is None:
            print("no sandbox started by this CLI", file=sys.stderr)
            return 1 if args.command == "stop" else 3
        sb = _sandbox_from_state(root, st)
        if args.command == "stop":
            sb.stop(cleanup=True)
            _state_file(root).unlink(missing_ok=True)
            print(f"stopped pid {st['pid']}")
            return 0
        if not sb.running():
            print(f"not running (stale state, pid {st['pid']})")
            return 3
        print(json.dumps(st, indent=2))
        print(sb.cli("core show uptime"))
        return 0
    except SandboxError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
