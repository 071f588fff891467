"""The SQLite store as one class: the area mixins over one connection.

Its own module so that no area module imports another: each knows only
``base.py``, and only this one sees them all (and proves, to mypy, that
together they are the whole contract).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dialerd.store.sqlite.agents import AgentsMixin
from dialerd.store.sqlite.attempts import AttemptsMixin
from dialerd.store.sqlite.dnc import DncMixin
from dialerd.store.sqlite.health import HealthMixin
from dialerd.store.sqlite.inbound import InboundMixin
from dialerd.store.sqlite.leads import LeadsMixin

if TYPE_CHECKING:
    from dialerd.store.api import StoreApi


class Store(LeadsMixin, AttemptsMixin, DncMixin, AgentsMixin, HealthMixin, InboundMixin):
    """Implements :class:`dialerd.store.api.StoreApi`; also the importer's
    bulk insert and the read-only queries of reports and tests."""


if TYPE_CHECKING:
    # mypy proves Store keeps up with the contract the daemon is typed against
    _contract: type[StoreApi] = Store
