"""A real Asterisk for tests, the demo and benchmarks (never used in production).

``dialerd.sandbox.asterisk`` runs Asterisk 22 from a cached Debian sid chroot
with the production ``asterisk-conf/`` plus a simulated-customers dialplan;
``dialerd.sandbox.agents`` logs simulated agents in and out over AMI;
``dialerd.sandbox.scenario`` writes configurations and seeds campaigns
(``seed_campaign``); ``until`` waits for a condition; ``asterisk_view``
checks the daemon's attempts against Asterisk's own events.
CLI: ``python -m dialerd.sandbox {build,start,stop,status}``.
"""

from dialerd.sandbox.asterisk import (
    AmiCredentials,
    AsteriskSandbox,
    SandboxError,
    ensure_root,
)
from dialerd.sandbox.asterisk_view import AsteriskView, asterisk_view
from dialerd.sandbox.wait import until

__all__ = [
    "AmiCredentials",
    "AsteriskSandbox",
    "AsteriskView",
    "SandboxError",
    "asterisk_view",
    "ensure_root",
    "until",
]
