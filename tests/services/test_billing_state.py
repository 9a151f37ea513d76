"""The hold/settle state machine against a real database: whatever the order of admissions,
settlements, releases and credits, the books stay consistent and the balance never goes
negative while holds cover the worst case."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from reapi.config import ChatModel, Group
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


def make_machine(database_url: str) -> type[RuleBasedStateMachine]:
    class Books(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.loop = asyncio.new_event_loop()
            self.db = Database(database_url)
            self.hot = hot_ledger_for(database_url)
            self.run(self.hot.start())
            self.billing = BillingService(self.db, LocalLimiter(), node_id="machine", hot=self.hot)
            keys = KeyService(self.db)
            self.name = unique("machine")
            user = self.run(keys.create_user(self.name))
            key = self.run(keys.create_key(self.name))
            self.principal = Principal(key.key.id, user.id, user.name, "chat", ("default",), None)
            self.open: list[tuple[CallRecord, int]] = []
            self.credited = 0
            self.charged = 0

        def run(self, coro):  # type: ignore[no-untyped-def]
            return self.loop.run_until_complete(coro)

        def teardown(self) -> None:
            self.run(self.hot.close())
            self.run(self.db.dispose())
            self.loop.close()

        @rule(amount=st.integers(min_value=1, max_value=10**8))
        def credit(self, amount: int) -> None:
            self.run(self.billing.credit(self.name, amount))
            self.credited += amount

        @rule(max_tokens=st.integers(min_value=1, max_value=20_000))
        def admit(self, max_tokens: int) -> None:
            call = CallRecord(
                endpoint="test", user_id=self.principal.user_id, key_id=self.principal.key_id
            )
            body = {"messages": [{"role": "user", "content": "hello there"}]}
            try:
                self.run(self.billing.admit(call, self.principal, MODEL, GROUP, body, max_tokens))
            except Exception as exc:
                assert type(exc).__name__ == "InsufficientBalance"
                return
            call.model = "m"
            self.open.append((call, max_tokens))

        @rule(data=st.data(), succeed=st.booleans())
        def close(self, data: st.DataObject, succeed: bool) -> None:
            if not self.open:
                return
            call, max_tokens = self.open.pop(data.draw(st.integers(0, len(self.open) - 1)))
            assert call.billing is not None
            call.outcome = "ok" if succeed else "upstream_error"
            # A real upstream stays within max_tokens and cannot exceed the prompt's bound.
            call.usage = Usage(
                data.draw(st.integers(0, call.billing.prompt_bound)),
                data.draw(st.integers(0, max_tokens)),
            )
            cost = self.run(self.billing.close(call))
            assert self.run(self.billing.close(call)) == cost  # idempotent
            self.charged += cost

        @invariant()
        def books_balance(self) -> None:
            state = self.run(self.billing.balance(self.name))
            assert state.balance == self.credited - self.charged
            assert state.available >= 0
            assert state.balance >= 0

    return Books


def test_hold_settle_state_machine(database_url: str) -> None:
    machine = make_machine(database_url)
    machine.TestCase.settings = settings(max_examples=15, stateful_step_count=20, deadline=None)
    machine.TestCase().runTest()
