"""What a call costs: the seed's per-1M-token formula, exactly, in integer units.

    cost = (uncached_prompt x input + cached x cached_input + cache_write x cache_write_rate
            + completion x output) / 1,000,000, all rates times the group's price_ratio,
    rounded once, half up, to the unit (1e-9 USD).

A cached or cache-write rate that is not configured falls back to the input rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal

from reapi.config import ChatModel
from reapi.money import round_units, token_cost
from reapi.protocols.usage import Usage


@dataclass(frozen=True, slots=True)
class Rates:
    """USD per 1M tokens, already multiplied by the group's price ratio."""

    input: Decimal
    output: Decimal
    cached_input: Decimal
    cache_write: Decimal

    @classmethod
    def for_model(cls, model: ChatModel, price_ratio: Decimal) -> Rates:
        if model.free or not model.priced:
            zero = Decimal(0)
            return cls(zero, zero, zero, zero)
        assert model.input_per_mtok is not None and model.output_per_mtok is not None
        input_rate = model.input_per_mtok
        return cls(
            input=input_rate * price_ratio,
            output=model.output_per_mtok * price_ratio,
            cached_input=(
                model.cached_input_per_mtok
                if model.cached_input_per_mtok is not None
                else input_rate
            )
            * price_ratio,
            cache_write=(
                model.cache_write_per_mtok if model.cache_write_per_mtok is not None else input_rate
            )
            * price_ratio,
        )

    @property
    def free(self) -> bool:
        return not (self.input or self.output or self.cached_input or self.cache_write)

    def cost(self, usage: Usage) -> int:
        exact = (
            token_cost(usage.uncached_prompt_tokens, self.input)
            + token_cost(usage.cached_tokens, self.cached_input)
            + token_cost(usage.cache_write_tokens, self.cache_write)
            + token_cost(usage.completion_tokens, self.output)
        )
        return round_units(exact)

    def worst_case(self, prompt_tokens: int, max_tokens: int) -> int:
        """The most a call could cost: every prompt token at the dearest input rate, and every
        allowed output token. Rounded up so the hold always covers the settled cost."""
        dearest = max(self.input, self.cached_input, self.cache_write)
        exact = token_cost(prompt_tokens, dearest) + token_cost(max_tokens, self.output)
        return int(exact.to_integral_value(rounding=ROUND_CEILING))

    def as_record(self) -> dict[str, str]:
        return {
            "input_per_mtok": str(self.input),
            "output_per_mtok": str(self.output),
            "cached_input_per_mtok": str(self.cached_input),
            "cache_write_per_mtok": str(self.cache_write),
        }
