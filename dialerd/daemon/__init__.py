"""The asyncio shell around the core: AMI events in, AMI actions, store
writes and MQTT messages out.

``from dialerd.daemon import Daemon`` is the way in. The parts, each in a
module of its own: ``shell`` (what they share), ``lifecycle`` (start-up,
the drain, shut-down), ``loop`` (the one task that touches the core),
``executor`` (core commands carried out), ``hopper`` (leads loaded and
screened), ``keys`` (agent keys and PIN login), ``supervisor`` (commands
in, live state out), ``campaigns`` and ``compliance`` (what the core is fed
at start and on reload), ``resync`` (the picture after each AMI login).
"""

from __future__ import annotations

from dialerd.daemon.app import Daemon
from dialerd.daemon.compliance import DNC_REFRESH_S
from dialerd.daemon.executor import ORIGINATE_GRACE_S

__all__ = ["DNC_REFRESH_S", "ORIGINATE_GRACE_S", "Daemon"]
