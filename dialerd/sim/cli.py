"""Kept only because the benchmark scripts import ``aggregate`` from here.

``dialerd simulate`` is :mod:`dialerd.cli.simulate`; ``aggregate`` is
:mod:`dialerd.sim.summary`. Once ``bench/`` imports it from there, this file
goes.
"""

from dialerd.sim.summary import aggregate

__all__ = ["aggregate"]
