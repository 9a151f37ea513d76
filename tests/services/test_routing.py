from __future__ import annotations

import random
from collections import Counter

from reapi.config import Channel
from reapi.services.routing import Router


def channel(
    name: str, priority: int = 0, weight: int = 1, groups: list[str] | None = None
) -> Channel:
    return Channel(
        name=name,
        type="openai",
        base_url="http://127.0.0.1:1/v1",
        models=["m"],
        priority=priority,
        weight=weight,
        groups=groups or ["default"],
    )


def test_lower_priority_comes_first() -> None:
    router = Router([channel("backup", priority=5), channel("main", priority=0)])
    assert [c.name for c in router.candidates("m", "default")] == ["main", "backup"]


def test_weights_decide_the_first_pick_within_a_priority() -> None:
    router = Router([channel("a", weight=3), channel("b", weight=1)], rng=random.Random(7))
    firsts = Counter(router.candidates("m", "default")[0].name for _ in range(4000))
    assert 0.70 < firsts["a"] / 4000 < 0.80


def test_groups_select_channels() -> None:
    router = Router([channel("public"), channel("private", groups=["vip"])])
    assert [c.name for c in router.candidates("m", "vip")] == ["private"]
    assert router.models_for(["vip"]) == {"m"}
    assert not router.serves("m", "nobody")
