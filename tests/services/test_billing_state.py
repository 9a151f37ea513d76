"""The hold/settle state machine against a real database: whatever the order of admissions,
settlements, releases and credits, and whatever an upstream reports as usage (absurd, negative,
of the wrong type, or nothing), the books stay consistent, no call is charged more than its
bounds, and the balance goes below zero only by what a hold cap left uncovered (with no cap,
never)."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from reapi.config import ChatModel, Group
from reapi.protocols.output import OutputBound
from reapi.protocols.usage import Usage
from reapi.services.billing import BillingService
from reapi.services.calls import CallRecord
from reapi.services.keys import KeyService, Principal
from reapi.services.limits import LocalLimiter
from reapi.storage.db import Database
from reapi.storage.hot_ledger import hot_ledger_for
from tests.conftest import unique

MODEL = ChatModel(name="m", input_per_mtok=Decimal("2"), output_per_mtok=Decimal("8"))
GROUP = Group(name="default")


# What an upstream may report as usage: nothing, honest counts, absurd counts, non-counts.
JUNK = st.one_of(
    st.integers(-(10**6), -1),
    st.floats(allow_nan=False) | st.just(1e300),
    st.text(max_size=5),
    st.none(),
    st.integers(0, 50_000),
)
USAGE = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {"prompt_tokens": st.integers(0, 200), "completion_tokens": st.integers(0, 20_000)}
    ),
    st.fixed_dictionaries(
        {"prompt_tokens": st.integers(0, 10**15), "completion_tokens": st.integers(0, 10**15)}
    ),
    st.fixed_dictionaries({"prompt_tokens": JUNK, "completion_tokens": JUNK}),
)
OUTCOMES = st.sampled_from(["ok", "ok", "client_gone", "upstream_error", "upstream_broke"])


def make_machine(database_url: str, hold_cap: Decimal | None) -> type[RuleBasedStateMachine]:
    class Books(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.loop = asyncio.new_event_loop()
            self.db = Database(database_url)
            self.hot = hot_ledger_for(database_url)
            self.run(self.hot.start())
            self.billing = BillingService(
                self.db, LocalLimiter(), node_id="machine", hot=self.hot, hold_cap=hold_cap
            )
            # Alive, as a gateway is before it serves: a hold whose owner never heartbeated is an
            # orphan, which any gateway's recovery on this database would release mid-run.
            self.run(self.billing.heartbeat())
            keys = KeyService(self.db)
            self.name = unique("machine")
            user = self.run(keys.create_user(self.name))
            key = self.run(keys.create_key(self.name))
            self.principal = Principal(key.key.id, user.id, user.name, "chat", ("default",), None)
            self.open: list[CallRecord] = []
            self.credited = 0
            self.charged = 0
            # What hold caps left uncovered: the most the balance may be below zero.
            self.uncovered = 0

        def run(self, coro):  # type: ignore[no-untyped-def]
            return self.loop.run_until_complete(coro)

        def teardown(self) -> None:
            self.run(self.billing.drain())
            self.run(self.billing.retire())
            self.run(self.hot.close())
            self.run(self.db.dispose())
            self.loop.close()

        @rule(amount=st.integers(min_value=1, max_value=10**8))
        def credit(self, amount: int) -> None:
            self.run(self.billing.credit(self.name, amount))
            self.credited += amount

        @rule(
            per_choice=st.integers(min_value=1, max_value=20_000),
            choices=st.integers(min_value=1, max_value=4),
            text=st.text(max_size=200),
        )
        def admit(self, per_choice: int, choices: int, text: str) -> None:
            call = CallRecord(
                endpoint="test", user_id=self.principal.user_id, key_id=self.principal.key_id
            )
            body = {"messages": [{"role": "user", "content": "hello there " + text}]}
            bound = OutputBound(per_choice, choices)
            try:
                self.run(self.billing.admit(call, self.principal, MODEL, GROUP, body, bound))
            except Exception as exc:
                assert type(exc).__name__ == "InsufficientBalance"
                return
            call.model = "m"
            self.open.append(call)

        @rule(
            data=st.data(),
            outcome=OUTCOMES,
            usage=USAGE,
            output_chars=st.integers(0, 10**7),
        )
        def close(self, data: st.DataObject, outcome: str, usage: Any, output_chars: int) -> None:
            if not self.open:
                return
            call = self.open.pop(data.draw(st.integers(0, len(self.open) - 1)))
            ticket = call.billing
            assert ticket is not None
            call.outcome = outcome
            call.output_chars = output_chars
            call.usage = None if usage is None else Usage.from_openai(usage)
            cost = self.run(self.billing.close(call))
            assert self.run(self.billing.close(call)) == cost  # idempotent
            assert cost <= ticket.worst
            if hold_cap is None:
                assert cost <= ticket.hold
            if outcome in ("ok", "client_gone"):
                assert call.usage is not None
                assert call.usage.completion_tokens <= ticket.output.tokens
            else:
                assert cost == 0
            self.charged += cost
            self.uncovered += max(0, cost - ticket.hold)

        @invariant()
        def books_balance(self) -> None:
            state = self.run(self.billing.balance(self.name))
            assert state.balance == self.credited - self.charged
            assert state.balance >= -self.uncovered
            if hold_cap is None:
                assert self.uncovered == 0
                assert state.available >= 0

    return Books


@pytest.mark.parametrize("hold_cap", [None, Decimal("0.0001")], ids=["no-cap", "capped"])
def test_hold_settle_state_machine(database_url: str, hold_cap: Decimal | None) -> None:
    machine = make_machine(database_url, hold_cap)
    machine.TestCase.settings = settings(max_examples=15, stateful_step_count=20, deadline=None)
    machine.TestCase().runTest()
