"""How much output a request may make: one bound per call, read from every field that says so.

Clients bound output with different fields (``max_tokens`` in both chat formats,
``max_completion_tokens`` in OpenAI's, ``max_output_tokens`` in the Responses API) and ask for
several answers with ``n``. A client may send more than one of them, in either format; an
upstream obeys the one it knows. So the gateway reads them all, takes the smallest, and then
sends exactly that value in exactly one field: what is held is what the upstream is told
(``docs/billing.md``, "One output bound").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reapi.protocols.errors import InvalidRequest

# Every field of every supported wire format that caps the tokens one answer may have.
OUTPUT_FIELDS = ("max_tokens", "max_completion_tokens", "max_output_tokens")
# OpenAI documents n in 1..128.
MAX_CHOICES = 128


@dataclass(frozen=True, slots=True)
class OutputBound:
    """At most ``per_choice`` tokens for each of ``choices`` answers."""

    per_choice: int
    choices: int = 1

    @property
    def tokens(self) -> int:
        return self.per_choice * self.choices


def requested(body: dict[str, Any], *, allow_choices: bool) -> tuple[int | None, str, int]:
    """(the smallest output cap the body names, or None; the field that named it; the number
    of answers asked for).

    Every cap must be a positive integer and ``n`` an integer in 1..128; anything else is a
    400 naming the field. ``allow_choices`` is False for formats that produce one answer
    (Anthropic Messages): there ``n`` may only be 1.
    """
    cap: int | None = None
    cap_field = OUTPUT_FIELDS[0]
    for name in OUTPUT_FIELDS:
        if body.get(name) is not None:
            value = _positive_int(body[name], name)
            if cap is None or value < cap:
                cap, cap_field = value, name
    choices = 1
    if body.get("n") is not None:
        choices = _positive_int(body["n"], "n")
        limit = MAX_CHOICES if allow_choices else 1
        if choices > limit:
            raise InvalidRequest(
                f"'n' must be between 1 and {limit}, got {choices}."
                if allow_choices
                else "'n': this endpoint generates one answer per request; n must be 1.",
                "n",
            )
    return cap, cap_field, choices


def apply(body: dict[str, Any], bound: OutputBound, field: str, *, send_choices: bool) -> None:
    """Make ``body`` carry exactly ``bound``: its cap in ``field`` alone, and ``n`` only when
    the format has it and more than one answer was asked for."""
    for name in OUTPUT_FIELDS:
        body.pop(name, None)
    body[field] = bound.per_choice
    body.pop("n", None)
    if send_choices and bound.choices > 1:
        body["n"] = bound.choices


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest(f"'{name}' must be an integer, got {_shown(value)}.", name)
    if value < 1:
        raise InvalidRequest(f"'{name}' must be at least 1, got {value}.", name)
    return value


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
