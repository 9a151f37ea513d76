"""Copy-paste examples for the model pages, generated per model from the catalog.

Each example is a whole program (or shell command) that runs as printed once ``YOUR_API_KEY``
is replaced by a real key: the base URL is the gateway's ``public_url`` and every literal that
comes from the config (model names, enum values) is written through a JSON encoder, whose
output is a valid string literal in each of these languages. Task examples send the model's
required fields with sample values; a media input's sample is a placeholder URL the reader
replaces with their own file.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from reapi.config import ChatModel
from reapi.protocols.tasks import OUTPUT_FIELDS, SUBMIT_PATHS
from reapi.services.tasks.catalog import TaskModel
from reapi.services.tasks.schema import FieldSpec

API_KEY = "YOUR_API_KEY"
TASK_ID = "TASK_ID"
PROMPTS = {
    "image": "A red fox sitting in fresh snow, golden hour light",
    "video": "Slow waves rolling onto a sandy beach at sunset",
    "audio": "A warm acoustic folk song about a long road home",
}
LYRICS = "[Verse]\nStreetlights hum a quiet tune\n[Chorus]\nWe sing until the morning comes"
# Sample text for a field by its name, where the name says what the text is.
TEXTS = {
    "lyrics": LYRICS,
    "text": "Hello! This sentence was written by a person and spoken by a machine.",
}
# Placeholders for media inputs, by the kind of media a field most likely takes.
SAMPLE_MEDIA = {
    "audio": "https://example.com/song.mp3",
    "image": "https://example.com/photo.png",
    "video": "https://example.com/clip.mp4",
}


@dataclass(frozen=True)
class Example:
    lang: str  # curl | python | typescript | go
    title: str
    code: str
    sdk: str | None = None  # openai | anthropic, where a language has both
    step: str | None = None  # submit | poll, for the two-command curl flow of tasks


def q(value: str) -> str:
    """A string literal valid in Python, TypeScript and Go alike."""
    return json.dumps(value, ensure_ascii=False)


def chat_examples(model: ChatModel, url: str) -> tuple[Example, ...]:
    name = q(model.name)
    max_tokens = min(1024, model.max_output_tokens)
    body = "\n".join(
        (
            "{",
            f'  "model": {name},',
            '  "messages": [',
            '    {"role": "user", "content": "Hello"}',
            "  ],",
            f'  "max_tokens": {max_tokens},',
            '  "stream": true',
            "}",
        )
    )
    curl = f"""curl -N {shlex.quote(url + "/v1/chat/completions")} \\
  -H "Authorization: Bearer {API_KEY}" \\
  -H "Content-Type: application/json" \\
  -d {shlex.quote(_nested(body))}
"""
    openai_py = f"""from openai import OpenAI

client = OpenAI(
    api_key="{API_KEY}",
    base_url={q(url + "/v1")},
)

stream = client.chat.completions.create(
    model={name},
    messages=[{{"role": "user", "content": "Hello"}}],
    max_tokens={max_tokens},
    stream=True,
)
for chunk in stream:
    if chunk.choices:
        print(chunk.choices[0].delta.content or "", end="", flush=True)
print()
"""
    anthropic_py = f"""from anthropic import Anthropic

client = Anthropic(
    api_key="{API_KEY}",
    base_url={q(url)},
)

with client.messages.stream(
    model={name},
    max_tokens={max_tokens},
    messages=[{{"role": "user", "content": "Hello"}}],
) as stream:
    for text in stream.text_stream:
        print(text, end="", flush=True)
print()
"""
    openai_ts = f"""import OpenAI from "openai";

const client = new OpenAI({{
  apiKey: "{API_KEY}",
  baseURL: {q(url + "/v1")},
}});

const stream = await client.chat.completions.create({{
  model: {name},
  messages: [{{ role: "user", content: "Hello" }}],
  max_tokens: {max_tokens},
  stream: true,
}});

for await (const chunk of stream) {{
  process.stdout.write(chunk.choices[0]?.delta?.content ?? "");
}}
process.stdout.write("\\n");
"""
    go = f"""package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
)

func main() {{
	body, err := json.Marshal(map[string]any{{
		"model":      {name},
		"max_tokens": {max_tokens},
		"messages": []map[string]string{{
			{{"role": "user", "content": "Hello"}},
		}},
	}})
	if err != nil {{
		log.Fatal(err)
	}}
	req, err := http.NewRequest("POST", {q(url + "/v1/chat/completions")}, bytes.NewReader(body))
	if err != nil {{
		log.Fatal(err)
	}}
	req.Header.Set("Authorization", "Bearer {API_KEY}")
	req.Header.Set("Content-Type", "application/json")

	resp, err := http.DefaultClient.Do(req)
	if err != nil {{
		log.Fatal(err)
	}}
	defer resp.Body.Close()

	var out struct {{
		Choices []struct {{
			Message struct {{
				Content string `json:"content"`
			}} `json:"message"`
		}} `json:"choices"`
		Error *struct {{
			Message string `json:"message"`
		}} `json:"error"`
	}}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {{
		log.Fatal(err)
	}}
	if out.Error != nil {{
		log.Fatal(out.Error.Message)
	}}
	fmt.Println(out.Choices[0].Message.Content)
}}
"""
    return (
        Example("curl", "curl", curl),
        Example("python", "Python · openai", openai_py, sdk="openai"),
        Example("python", "Python · anthropic", anthropic_py, sdk="anthropic"),
        Example("typescript", "TypeScript", openai_ts, sdk="openai"),
        Example("go", "Go", go),
    )


def _nested(json_text: str) -> str:
    """Pretty JSON indented to sit under a ``-d`` line of a curl command."""
    first, _, rest = json_text.partition("\n")
    return first + "\n" + "\n".join("  " + line for line in rest.splitlines())


def sample_body(model: TaskModel) -> dict[str, Any]:
    """The smallest request that passes the model's schema: its required fields and a
    prompt (most models' modes need one)."""
    body: dict[str, Any] = {"model": model.name}
    for name, spec in model.schema.items():
        if spec.required or name == "prompt":
            body[name] = sample_value(name, spec, model.kind)
    return body


def sample_value(name: str, spec: FieldSpec, kind: str) -> Any:
    if spec.default is not None:
        return _plain(spec.default)
    if spec.enum:
        return _plain(spec.enum[0])
    if spec.type == "url":
        return SAMPLE_MEDIA[_media_of(name, kind)]
    if spec.type == "string":
        text = TEXTS.get(name) or PROMPTS.get(kind, "Hello")
        if spec.max_length is not None:
            text = text[: spec.max_length]
        return text
    if spec.type in ("integer", "number"):
        return _plain(spec.min) if spec.min is not None else 1
    if spec.type == "boolean":
        return False
    if spec.type == "array" and spec.items is not None:
        return [sample_value(name, spec.items, kind)] * max(1, spec.min_items or 1)
    if spec.type == "object" and spec.properties:
        return {n: sample_value(n, s, kind) for n, s in spec.properties.items() if s.required}
    return ""


def uses_placeholder_media(body: Any) -> bool:
    """Whether a sample body holds a placeholder media URL the reader must replace."""
    text = json.dumps(body)
    return any(url in text for url in SAMPLE_MEDIA.values())


def _media_of(name: str, kind: str) -> str:
    for media in SAMPLE_MEDIA:
        if media in name:
            return media
    return kind if kind in SAMPLE_MEDIA else "image"


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def _python_literal(value: Any, indent: int) -> str:
    """JSON, but with Python's spelling of true, false and null."""
    pad = " " * indent
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = [f"{pad}    {q(k)}: {_python_literal(v, indent + 4)}," for k, v in value.items()]
        return "{\n" + "\n".join(items) + f"\n{pad}}}"
    if isinstance(value, list):
        return "[" + ", ".join(_python_literal(v, indent) for v in value) + "]"
    if isinstance(value, bool):
        return "True" if value else "False"
    if value is None:
        return "None"
    return json.dumps(value, ensure_ascii=False)


def task_examples(model: TaskModel, url: str) -> tuple[Example, ...]:
    body = sample_body(model)
    path = SUBMIT_PATHS[model.kind]
    output = OUTPUT_FIELDS[model.kind]
    api = url + "/api/v1"
    pretty = json.dumps(body, indent=2, ensure_ascii=False)
    submit = f"""curl {shlex.quote(api + path)} \\
  -H "Authorization: Bearer {API_KEY}" \\
  -H "Content-Type: application/json" \\
  -d {shlex.quote(_nested(pretty))}
"""
    poll = f"""curl {shlex.quote(api + "/tasks/" + TASK_ID)} \\
  -H "Authorization: Bearer {API_KEY}"
"""
    python = f"""import time

import requests

API = {q(api)}
HEADERS = {{"Authorization": "Bearer {API_KEY}"}}

task = requests.post(
    API + {q(path)},
    headers=HEADERS,
    json={_python_literal(body, 4)},
    timeout=60,
).json()
while task.get("status") == "processing":
    time.sleep(2)
    task = requests.get(API + "/tasks/" + task["id"], headers=HEADERS, timeout=60).json()
if task.get("status") != "completed":
    raise SystemExit(task["error"]["message"])
for url in task["output"][{q(output)}]:
    print(url)
"""
    ts_body = "\n".join("  " + line for line in pretty.splitlines()).lstrip()
    typescript = f"""const API = {q(api)};
const headers = {{
  Authorization: "Bearer {API_KEY}",
  "Content-Type": "application/json",
}};

const body = {ts_body};

let response = await fetch(API + {q(path)}, {{
  method: "POST",
  headers,
  body: JSON.stringify(body),
}});
let task = await response.json();
while (task.status === "processing") {{
  await new Promise((resolve) => setTimeout(resolve, 2000));
  response = await fetch(API + "/tasks/" + task.id, {{ headers }});
  task = await response.json();
}}
if (task.status !== "completed") {{
  throw new Error(task.error.message);
}}
for (const url of task.output[{q(output)}]) {{
  console.log(url);
}}
"""
    compact = json.dumps(body, ensure_ascii=False)
    go_body = f"`{compact}`" if "`" not in compact else q(compact)
    go = f"""package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"time"
)

const api = {q(api)}

type task struct {{
	ID     string                     `json:"id"`
	Status string                     `json:"status"`
	Output map[string]json.RawMessage `json:"output"`
	Error  *struct {{
		Message string `json:"message"`
	}} `json:"error"`
}}

func call(method, url string, body []byte) task {{
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {{
		log.Fatal(err)
	}}
	req.Header.Set("Authorization", "Bearer {API_KEY}")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {{
		log.Fatal(err)
	}}
	defer resp.Body.Close()
	var t task
	if err := json.NewDecoder(resp.Body).Decode(&t); err != nil {{
		log.Fatal(err)
	}}
	return t
}}

func main() {{
	t := call("POST", api+{q(path)}, []byte({go_body}))
	for t.Status == "processing" {{
		time.Sleep(2 * time.Second)
		t = call("GET", api+"/tasks/"+t.ID, nil)
	}}
	if t.Status != "completed" {{
		log.Fatal(t.Error.Message)
	}}
	var urls []string
	if err := json.Unmarshal(t.Output[{q(output)}], &urls); err != nil {{
		log.Fatal(err)
	}}
	for _, url := range urls {{
		fmt.Println(url)
	}}
}}
"""
    return (
        Example("curl", "curl · submit", submit, step="submit"),
        Example("curl", "curl · poll", poll, step="poll"),
        Example("python", "Python", python),
        Example("typescript", "TypeScript", typescript),
        Example("go", "Go", go),
    )
