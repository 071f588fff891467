"""The PostgreSQL store as one class: the area mixins over one pool.

Its own module so that no area module imports another: each knows only
``base.py``, and only this one sees them all (and proves, to mypy, that
together they are the whole contract).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dialerd.store.postgres.agents import AgentsMixin
from dialerd.store.postgres.attempts import AttemptsMixin
from dialerd.store.postgres.dnc import DncMixin
from dialerd.store.postgres.health import HealthMixin
from dialerd.store.postgres.inbound import InboundMixin
from dialerd.store.postgres.leads import LeadsMixin

if TYPE_CHECKING:
    from dialerd.store.api import StoreApi


class Store(LeadsMixin, AttemptsMixin, DncMixin, AgentsMixin, HealthMixin, InboundMixin):
    """Implements :class:`dialerd.store.api.StoreApi` on PostgreSQL; also the
    read-only extras of the SQLite store that reports and tests use."""


if TYPE_CHECKING:
    # mypy proves Store keeps up with the contract the daemon is typed against
    _contract: type[StoreApi] = Store
