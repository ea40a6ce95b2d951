"""Rollout strategies: one file each behind strategies.base.Strategy, chosen by spec.strategy."""

from ..spec import Spec
from .abtest import ABTest
from .base import Strategy
from .bluegreen import BlueGreen
from .canary import Canary
from .shadow import Shadow

STRATEGIES: dict[str, Strategy] = {s.name: s for s in (Canary(), BlueGreen(), Shadow(), ABTest())}


def strategy_for(spec: Spec) -> Strategy:
    return STRATEGIES[spec.strategy]


__all__ = ["ABTest", "BlueGreen", "Canary", "STRATEGIES", "Shadow", "Strategy", "strategy_for"]
