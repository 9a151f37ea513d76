"""Stopgap for `reapi credit NAME AMOUNT` until that command lands: grants USD to a
user through reapi's own storage functions (no SQL of ours). Run with the reapi
venv's Python; used by systems.py only when `reapi credit` is missing.
"""

from __future__ import annotations

import asyncio
import os
import sys


async def grant(name: str, usd: str) -> None:
    from reapi.money import usd_to_units
    from reapi.storage import accounts, ledger
    from reapi.storage.db import Database

    db = Database(os.environ["REAPI_DATABASE_URL"])
    try:
        async with db.session() as session:
            user = await accounts.user_by_name(session, name)
            if user is None:
                sys.exit(f"no user named {name!r}")
            account = await ledger.ensure_account(session, user.id, "chat")
            await ledger.post_entry(session, account.id, usd_to_units(usd), kind="credit",
                                    user_id=user.id, note="bench")
    finally:
        await db.dispose()


if __name__ == "__main__":
    asyncio.run(grant(sys.argv[1], sys.argv[2]))
