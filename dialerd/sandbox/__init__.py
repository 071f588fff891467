"""A real Asterisk for tests, the demo and benchmarks (never used in production).

``dialerd.sandbox.asterisk`` runs Asterisk 22 from a cached Debian sid chroot
with the production ``asterisk-conf/`` plus a simulated-customers dialplan;
``dialerd.sandbox.agents`` logs simulated agents in and out over AMI.
CLI: ``python -m dialerd.sandbox {build,start,stop,status}``.
"""

from dialerd.sandbox.asterisk import (
    AmiCredentials,
    AsteriskSandbox,
    SandboxError,
    ensure_root,
)

__all__ = ["AmiCredentials", "AsteriskSandbox", "SandboxError", "ensure_root"]
