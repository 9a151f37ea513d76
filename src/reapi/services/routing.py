"""Channel selection: which upstream accounts may serve (model, group), in what order.

Channels with a lower ``priority`` come first; inside one priority the order is a weighted
random draw. The relay only moves to the next candidate when the previous one could not even be
connected to (nothing was sent), so a call never reaches two upstreams.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable

from reapi.config import Channel


class Router:
    def __init__(self, channels: Iterable[Channel], *, rng: random.Random | None = None) -> None:
        self._rng = rng or random.Random()
        tiers: dict[tuple[str, str], dict[int, list[Channel]]] = defaultdict(
            lambda: defaultdict(list)
        )
        for channel in channels:
            for model in channel.models:
                for group in channel.groups:
                    tiers[(model, group)][channel.priority].append(channel)
        self._tiers = {
            key: [by_priority[p] for p in sorted(by_priority)] for key, by_priority in tiers.items()
        }
        self._models_by_group: dict[str, set[str]] = defaultdict(set)
        for model, group in self._tiers:
            self._models_by_group[group].add(model)

    def serves(self, model: str, group: str) -> bool:
        return (model, group) in self._tiers

    def models_for(self, groups: Iterable[str]) -> set[str]:
        found: set[str] = set()
        for group in groups:
            found |= self._models_by_group.get(group, set())
        return found

    def candidates(self, model: str, group: str) -> list[Channel]:
        ordered: list[Channel] = []
        for tier in self._tiers.get((model, group), ()):
            if len(tier) == 1:
                ordered.append(tier[0])
            else:
                ordered.extend(self._weighted_order(tier))
        return ordered

    def _weighted_order(self, tier: list[Channel]) -> list[Channel]:
        # Efraimidis-Spirakis: sort by u^(1/w); the first pick follows the weights exactly.
        return sorted(tier, key=lambda c: self._rng.random() ** (1.0 / c.weight), reverse=True)
