"""The OpenAPI 3.1 document of reapi's own API, served at ``GET /openapi.json``.

Hand-written YAML (``reapi.yaml``) for what only prose can decide: paths, statuses, envelopes,
security, links. Two parts come from the code at build time, so they cannot drift from it: the
admin request bodies (the pydantic models the handlers validate with) and the task error codes
(``TaskErrorCode``). The test suite checks that the result is valid OpenAPI 3.1, that every
route of the app is in it, and fuzzes the running gateway against it with schemathesis.

Built once by ``create_app``; the handler serves the same bytes for the process's lifetime.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import orjson
import yaml
from starlette.requests import Request
from starlette.responses import Response

from reapi import __version__
from reapi.http.admin_bodies import request_schemas
from reapi.protocols.tasks import TaskErrorCode


def build() -> dict[str, Any]:
    text = resources.files(__package__).joinpath("reapi.yaml").read_text(encoding="utf-8")
    document: dict[str, Any] = yaml.safe_load(text)
    document["info"]["version"] = __version__
    schemas = document["components"]["schemas"]
    schemas.update(request_schemas())
    schemas["TaskErrorCode"]["enum"] = sorted(int(code) for code in TaskErrorCode)
    return document


def endpoint(document: dict[str, Any]) -> Any:
    """``GET /openapi.json``, answering ``document`` serialized once."""
    body = orjson.dumps(document)

    async def openapi_json(request: Request) -> Response:
        return Response(body, media_type="application/json")

    return openapi_json
