"""The cost formula, exactly: property tests against plain decimal arithmetic."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from hypothesis import given
from hypothesis import strategies as st

from reapi.config import ChatModel
from reapi.money import format_usd, usd_to_units
from reapi.protocols.usage import Usage
from reapi.services.pricing import Rates

rates = st.decimals(min_value=0, max_value=200, places=4, allow_nan=False, allow_infinity=False)
tokens = st.integers(min_value=0, max_value=2_000_000)
ratios = st.decimals(min_value=0, max_value=5, places=3, allow_nan=False, allow_infinity=False)


@given(rates, rates, rates, tokens, tokens, tokens, ratios)
def test_cost_is_the_seed_formula_rounded_once(
    input_rate: Decimal,
    output_rate: Decimal,
    cached_rate: Decimal,
    prompt: int,
    cached_part: int,
    completion: int,
    ratio: Decimal,
) -> None:
    cached = min(cached_part, prompt)
    model = ChatModel(
        name="m",
        input_per_mtok=input_rate,
        output_per_mtok=output_rate,
        cached_input_per_mtok=cached_rate,
    )
    cost = Rates.for_model(model, ratio).cost(Usage(prompt, completion, cached))
    usd = (
        ((prompt - cached) * input_rate + cached * cached_rate + completion * output_rate)
        * ratio
        / Decimal(1_000_000)
    )
    assert cost == int((usd * 10**9).quantize(Decimal(1), rounding=ROUND_HALF_UP))


@given(rates, rates, tokens, tokens, tokens)
def test_worst_case_covers_any_call_within_its_bounds(
    input_rate: Decimal, output_rate: Decimal, bound: int, max_tokens: int, used: int
) -> None:
    model = ChatModel(name="m", input_per_mtok=input_rate, output_per_mtok=output_rate)
    priced = Rates.for_model(model, Decimal(1))
    usage = Usage(min(used, bound), min(used, max_tokens))
    assert priced.cost(usage) <= priced.worst_case(bound, max_tokens)


@given(st.integers(min_value=-(10**15), max_value=10**15))
def test_usd_strings_round_trip(units: int) -> None:
    assert usd_to_units(format_usd(units)) == units


def test_unpriced_or_free_models_cost_nothing() -> None:
    free = Rates.for_model(ChatModel(name="m", free=True), Decimal(1))
    assert free.free and free.cost(Usage(1000, 1000)) == 0
