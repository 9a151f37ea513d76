"""The chat templates llama-server renders prompts with.

The packaged GGUF carries no ``tokenizer.chat_template``, so llama-server needs the template as
text. Two ship here, chosen by name with a ``llamacpp`` channel's ``chat_template`` option:

- ``plain`` (``PLAIN_TEXT_TEMPLATE``): the messages' text as it is, one message per line, with
  no turn markers, so the packaged base model simply continues it. A base model never saw
  Gemma's turn markers in training; wrapped in them, the 270M model answers with fragments and
  stray tokens, while the same text without them gets a sensible continuation.
- ``gemma`` (``GEMMA3_CHAT_TEMPLATE``, the default): Gemma's published turn format
  (``<start_of_turn>user`` / ``<start_of_turn>model``, a leading system message folded into the
  first user turn), for an instruction-tuned Gemma given as ``model_path``. It is written for
  llama.cpp's Jinja engine with two deliberate departures from Google's reference template,
  both so that requests a gateway forwards verbatim render instead of failing with a 500:

  - roles need not alternate: the reference template raises on two user turns in a row;
  - every role other than ``assistant`` (``tool``, a later ``system``, ``developer``) is
    rendered as a user turn, since Gemma was trained on exactly two roles.

Content may be a string or a list of parts; only ``text`` parts are rendered (the 270M model
has no vision tower).
"""

from __future__ import annotations

from collections.abc import Mapping

GEMMA3_CHAT_TEMPLATE = """\
{{- bos_token -}}
{%- if messages and messages[0]['role'] == 'system' -%}
  {%- set system = messages[0]['content'] -%}
  {%- set loop_messages = messages[1:] -%}
{%- else -%}
  {%- set system = none -%}
  {%- set loop_messages = messages -%}
{%- endif -%}
{%- macro render_content(content) -%}
  {%- if content is string -%}
    {{- content | trim -}}
  {%- elif content is not none -%}
    {%- for part in content -%}
      {%- if part['type'] == 'text' -%}{{- part['text'] | trim -}}{%- endif -%}
    {%- endfor -%}
  {%- endif -%}
{%- endmacro -%}
{%- for message in loop_messages -%}
  {%- set role = 'model' if message['role'] == 'assistant' else 'user' -%}
  {{- '<start_of_turn>' + role + '\\n' -}}
  {%- if loop.first and system is not none -%}
    {{- render_content(system) + '\\n\\n' -}}
  {%- endif -%}
  {{- render_content(message['content']) -}}
  {{- '<end_of_turn>\\n' -}}
{%- endfor -%}
{%- if not loop_messages and system is not none -%}
  {{- '<start_of_turn>user\\n' + render_content(system) + '<end_of_turn>\\n' -}}
{%- endif -%}
{%- if add_generation_prompt -%}
  {{- '<start_of_turn>model\\n' -}}
{%- endif -%}
"""

# A trailing assistant message is not a turn of its own: llama-server appends its text to the
# rendered prompt (a "prefill"), so the model goes on from it.
PLAIN_TEXT_TEMPLATE = """\
{{- bos_token -}}
{%- for message in messages -%}
  {%- if not loop.first -%}{{- '\\n' -}}{%- endif -%}
  {%- set content = message['content'] -%}
  {%- if content is string -%}
    {{- content -}}
  {%- elif content is not none -%}
    {%- for part in content -%}
      {%- if part['type'] == 'text' -%}{{- part['text'] -}}{%- endif -%}
    {%- endfor -%}
  {%- endif -%}
{%- endfor -%}
"""

NAMED_TEMPLATES: Mapping[str, str] = {"gemma": GEMMA3_CHAT_TEMPLATE, "plain": PLAIN_TEXT_TEMPLATE}


def chat_template(option: str) -> str:
    """The template a channel's ``chat_template`` option names; any other text is Jinja."""
    return NAMED_TEMPLATES.get(option, option)
