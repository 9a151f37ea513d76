"""``reapi serve --demo``: a gateway that answers for real before its operator owns any key.

It serves the packaged Gemma 3 270M through a supervised local llama-server, on the embedded
SQLite database, with billing on at the catalog's demo price. A ``demo`` user is created once
with a small credit; each start gives it a fresh key (the secret is only ever shown once, so a
rerun cannot show the old one) and revokes the previous demo keys.
"""

from __future__ import annotations

from reapi.config import Config, build_config
from reapi.money import usd_to_units
from reapi.services.billing import BillingService
from reapi.services.keys import AccountError, KeyService

DEMO_USER = "demo"
DEMO_CREDIT = "1.00"
DEMO_MODEL = "gemma-3-270m"
_KEY_LABEL = "demo"


def demo_config() -> Config:
    return build_config(
        {"channels": [{"name": "local", "type": "llamacpp", "models": [DEMO_MODEL]}]}
    )


async def prepare_demo(keys: KeyService, billing: BillingService) -> str:
    """Make sure the demo user exists (credited once) and return a new key for it."""
    try:
        await keys.require_user(DEMO_USER)
    except AccountError:
        await keys.create_user(DEMO_USER)
        await billing.credit(DEMO_USER, usd_to_units(DEMO_CREDIT), note="demo credit")
    for key in await keys.list_keys(DEMO_USER):
        if key.name == _KEY_LABEL and key.revoked_at is None:
            await keys.revoke_key(key.id)
    return (await keys.create_key(DEMO_USER, label=_KEY_LABEL)).secret


def banner(base_url: str, secret: str) -> str:
    return f"""
reapi demo: {DEMO_MODEL} (Gemma 3 270M, a small base model) served locally at {base_url}
user "{DEMO_USER}" has ${DEMO_CREDIT} of demo credit; this key is shown once:

    {secret}

curl (OpenAI format, streamed):

    curl -N {base_url}/v1/chat/completions -H "Authorization: Bearer {secret}" \\
      -H "Content-Type: application/json" \\
      -d '{{"model": "{DEMO_MODEL}", "max_tokens": 64, "stream": true,
           "messages": [{{"role": "user", "content": "The capital of France is"}}]}}'

openai SDK:

    python -c 'from openai import OpenAI
c = OpenAI(api_key="{secret}", base_url="{base_url}/v1")
for x in c.chat.completions.create(model="{DEMO_MODEL}", max_tokens=64, stream=True,
        messages=[{{"role": "user", "content": "The capital of France is"}}]):
    print(x.choices[0].delta.content or "" if x.choices else "", end="", flush=True)'

anthropic SDK:

    python -c 'from anthropic import Anthropic
c = Anthropic(api_key="{secret}", base_url="{base_url}")
with c.messages.stream(model="{DEMO_MODEL}", max_tokens=64,
        messages=[{{"role": "user", "content": "The capital of France is"}}]) as s:
    [print(t, end="", flush=True) for t in s.text_stream]'

balance:  reapi balance {DEMO_USER}        usage:  reapi usage {DEMO_USER}
"""
