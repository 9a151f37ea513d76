"""``reapi serve --demo``: a gateway that answers for real before its operator owns any key.

It serves the packaged Gemma 3 270M through a supervised local llama-server, on the embedded
SQLite database, with billing on at the catalog's demo price. With the ``tts`` extra installed
it also speaks text with eSpeak NG as an audio task, so the whole task flow (submit, poll,
credits, media URL) runs with no provider either. A ``demo`` user is credited once per
workspace; each start gives it fresh keys (a secret is only ever shown once, so a rerun cannot
show the old one) and revokes the previous demo keys.

The example request is chosen for a base model: Gemma 3 270M continues text and follows no
instructions, so it gets a pattern to continue, rendered without chat turn markers (the
``plain`` template), at temperature 0. At that setting it answers ``Paris.`` and goes on with
correct lines of the same pattern; ``tests/test_local_model.py`` checks the banner's request.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reapi.config import Config, build_config
from reapi.money import credits_to_units, format_credits, format_usd, usd_to_units
from reapi.providers.tasks import espeak
from reapi.services.billing import BillingService
from reapi.services.keys import AccountError, KeyService

DEMO_USER = "demo"
DEMO_CREDIT = "1.00"  # USD, for chat
DEMO_TASK_CREDITS = "100"  # credits ($0.10), for speech tasks
DEMO_MODEL = "gemma-3-270m"
DEMO_SPEECH_MODEL = "espeak-tts"
_KEY_LABEL = "demo"

# Two examples and the start of a third: the model completes the pattern.
DEMO_PROMPT = (
    "The capital of Germany is Berlin.\nThe capital of Italy is Rome.\nThe capital of France is"
)
DEMO_MAX_TOKENS = 35  # at temperature 0, the answer and four more lines, ending on a full stop
DEMO_TEMPERATURE = 0
DEMO_SPEECH = {
    "model": DEMO_SPEECH_MODEL,
    "text": "Hello. This voice was made on your own machine.",
    "voice": "en-us",
}


def demo_config(*, speech: bool | None = None) -> Config:
    """The demo's channels: the local model, and speech when the tts extra is installed
    (``speech`` forces it either way)."""
    channels: list[dict[str, Any]] = [
        {
            "name": "local",
            "type": "llamacpp",
            "models": [DEMO_MODEL],
            "options": {"chat_template": "plain"},
        }
    ]
    if espeak.installed() if speech is None else speech:
        channels.append({"name": "speech", "type": "espeak", "models": [DEMO_SPEECH_MODEL]})
    return build_config({"channels": channels})


def demo_speaks(config: Config) -> bool:
    return any(c.type == "espeak" for c in config.channels)


@dataclass(frozen=True, slots=True)
class DemoAccess:
    secret: str
    balance: int  # units
    revoked: int  # earlier demo keys revoked by this start
    tasks_secret: str | None = None  # None when the demo does not speak
    task_balance: int = 0  # units


async def prepare_demo(
    keys: KeyService, billing: BillingService, *, speech: bool = False
) -> DemoAccess:
    """Make sure the demo user exists (credited once per workspace) and give it new keys."""
    try:
        user = await keys.require_user(DEMO_USER)
    except AccountError:
        user = await keys.create_user(DEMO_USER)
        await billing.credit(DEMO_USER, usd_to_units(DEMO_CREDIT), note="demo credit")
    revoked = 0
    for key in await keys.list_keys(DEMO_USER):
        if key.name == _KEY_LABEL and key.revoked_at is None:
            await keys.revoke_key(key.id)
            revoked += 1
    secret = (await keys.create_key(DEMO_USER, label=_KEY_LABEL)).secret
    balance = (await billing.balance(DEMO_USER)).balance
    if not speech:
        return DemoAccess(secret, balance, revoked)
    # Checked apart from the user: a demo database from before speech has no task credits yet.
    credited, _ = await billing.totals_of(user.id, "tasks")
    if credited == 0:
        await billing.credit(
            DEMO_USER,
            credits_to_units(DEMO_TASK_CREDITS),
            note="demo task credits",
            workspace="tasks",
        )
    tasks_secret = (await keys.create_key(DEMO_USER, label=_KEY_LABEL, workspace="tasks")).secret
    task_balance = (await billing.balance(DEMO_USER, "tasks")).balance
    return DemoAccess(secret, balance, revoked, tasks_secret, task_balance)


def banner(base_url: str, access: DemoAccess) -> str:
    # The commands name this installation's own interpreter and CLI, so they work as printed
    # whether or not its virtualenv is activated.
    python = sys.executable
    reapi = str(Path(sys.executable).with_name("reapi"))
    secret = access.secret
    revoked = (
        f" (the {access.revoked} earlier demo key{'s were' if access.revoked > 1 else ' was'} "
        "revoked)"
        if access.revoked
        else ""
    )
    prompt = json.dumps(DEMO_PROMPT)  # also a valid Python string literal
    # The anthropic example sends temperature through extra_body: recent SDKs dropped the
    # argument from messages.stream(), and extra_body works with every version.
    settings = f'"max_tokens": {DEMO_MAX_TOKENS}, "temperature": {DEMO_TEMPERATURE}'
    text = f"""
reapi demo: {DEMO_MODEL} served locally at {base_url}

Gemma 3 270M is a small BASE model: it continues the text you send; it does not chat or follow
instructions. Give it the start of a pattern to complete, as below (few-shot), and use
temperature 0 for its most likely continuation; higher temperatures soon wander.

user "{DEMO_USER}" has ${format_usd(access.balance)} of demo credit.
This new key is shown once{revoked}:

    {secret}

curl (OpenAI format, streamed):

    curl -N {base_url}/v1/chat/completions -H "Authorization: Bearer {secret}" \\
      -H "Content-Type: application/json" \\
      -d '{{"model": "{DEMO_MODEL}", {settings}, "stream": true,
           "messages": [{{"role": "user", "content": {prompt}}}]}}'

openai SDK:

    {python} -c 'from openai import OpenAI
c = OpenAI(api_key="{secret}", base_url="{base_url}/v1")
for x in c.chat.completions.create(model="{DEMO_MODEL}", max_tokens={DEMO_MAX_TOKENS},
        temperature={DEMO_TEMPERATURE}, stream=True,
        messages=[{{"role": "user", "content": {prompt}}}]):
    print(x.choices[0].delta.content or "" if x.choices else "", end="", flush=True)'

anthropic SDK:

    {python} -c 'from anthropic import Anthropic
c = Anthropic(api_key="{secret}", base_url="{base_url}")
with c.messages.stream(model="{DEMO_MODEL}", max_tokens={DEMO_MAX_TOKENS},
        extra_body={{"temperature": {DEMO_TEMPERATURE}}},
        messages=[{{"role": "user", "content": {prompt}}}]) as s:
    [print(t, end="", flush=True) for t in s.text_stream]'

balance:  {reapi} balance {DEMO_USER}
usage:    {reapi} usage {DEMO_USER}
"""
    if access.tasks_secret is None:
        return text + (
            "\ntext-to-speech tasks: not installed; pip install 'reapi[tts]' and rerun to try "
            "the task API\n"
        )
    return text + _speech_banner(base_url, access.tasks_secret, access.task_balance, reapi)


def _speech_banner(base_url: str, tasks_secret: str, task_balance: int, reapi: str) -> str:
    python = sys.executable
    auth = f'-H "Authorization: Bearer {tasks_secret}"'
    read_id = (
        "import json, sys; r = json.load(sys.stdin); "
        'print(r["id"]) if "id" in r else sys.exit(r["error"]["message"])'
    )
    return f"""
text-to-speech, an audio task (eSpeak NG on this machine, {DEMO_SPEECH_MODEL}): submit, then
poll; the finished task's output.audio_urls holds a WAV file to download. The tasks key (shown
once) has {format_credits(task_balance)} credits; speech costs 1 credit per 1,000 characters.

    {tasks_secret}

    TASK=$(curl -s {base_url}/api/v1/audio/generations {auth} \\
      -H "Content-Type: application/json" -d '{json.dumps(DEMO_SPEECH)}' \\
      | {python} -c '{read_id}')
    curl -s {base_url}/api/v1/tasks/$TASK {auth}

task balance: {reapi} balance {DEMO_USER} --workspace tasks
"""
