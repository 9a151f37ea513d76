"""The admin API's request bodies as strict pydantic models.

Strict: a string is a JSON string (never a number turned into one), a list a JSON array, and an
unknown field is an error, so a misspelt restriction can never create an unrestricted key. The
same classes give ``/openapi.json`` its request schemas (``request_schemas``), so the document
cannot drift from what the handlers accept. Amounts are decimal strings (``"10.00"``): money
never travels as a float.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    StringConstraints,
    ValidationError,
    WithJsonSchema,
)

from reapi.errors import InvalidRequest
from reapi.http.params import ParamError, parse_timestamp
from reapi.money import UNITS_PER_USD
from reapi.services.billing import MAX_ENTRY
from reapi.services.keys import GROUP_PATTERN, NAME_PATTERN

# At most nine digits before the point keeps every amount under MAX_ENTRY (one billion USD),
# nine after it is the money unit (1e-9 USD); credits allow six (checked by the handler).
AMOUNT_PATTERN = r"^[0-9]{1,9}(\.[0-9]{1,9})?$"
assert 10**9 * UNITS_PER_USD <= MAX_ENTRY

UserName = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
GroupName = Annotated[str, StringConstraints(pattern=GROUP_PATTERN)]
Amount = Annotated[str, StringConstraints(pattern=AMOUNT_PATTERN)]
# Printable text: labels and model names end up in SQL parameters, where a NUL is an error.
Label = Annotated[str, StringConstraints(max_length=128, pattern=r"^[^\x00-\x1f\x7f]*$")]
ModelName = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[!-~]+$")]
Note = Annotated[str, StringConstraints(max_length=500, pattern=r"^[^\x00]*$")]
Workspace = Literal["chat", "tasks"]


def _timestamp(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError("must be an RFC 3339 date or date-time string")
    try:
        return parse_timestamp(value, "expires_at")
    except ParamError as exc:
        raise ValueError(exc.message) from None


Timestamp = Annotated[
    datetime,
    PlainValidator(_timestamp),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "format": "date"},
                {"type": "string", "format": "date-time"},
            ],
            "description": "An RFC 3339 date (its midnight UTC) or date-time.",
            "examples": ["2027-01-01T00:00:00Z"],
        }
    ),
]


class AdminBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


Body = TypeVar("Body", bound=AdminBody)


class CreateUser(AdminBody):
    name: UserName
    groups: list[GroupName] | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description='Groups the user may use; default: ["default"].',
    )


class CreateKey(AdminBody):
    name: Label = Field(default="", description="A label for the key.")
    group: GroupName | None = Field(
        default=None, description="The key's default group: one of the user's groups."
    )
    workspace: Workspace | None = Field(default=None, description="Default: chat.")
    spend_limit: Amount | None = Field(default=None, description="USD, a decimal string.")
    daily_spend_limit: Amount | None = Field(default=None, description="USD per UTC day.")
    expires_at: Timestamp | None = None
    models: list[ModelName] | None = Field(
        default=None,
        min_length=1,
        max_length=256,
        description="The only models the key may use; default: every model of its groups.",
    )


class Credit(AdminBody):
    amount: Amount = Field(description="USD for chat, credits for tasks; a decimal string.")
    note: Note = ""
    workspace: Workspace | None = Field(default=None, description="Default: chat.")


def parse(model: type[Body], body: object) -> Body:
    """``body`` (decoded JSON) as ``model``, or an ``InvalidRequest`` naming the first bad field."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise _invalid(model, exc) from None


def _invalid(model: type[AdminBody], exc: ValidationError) -> InvalidRequest:
    error = exc.errors(include_url=False)[0]
    param = ".".join(str(part) for part in error["loc"]) or None
    if error["type"] == "model_type":
        return InvalidRequest("The request body must be a JSON object.")
    if error["type"] == "extra_forbidden":
        known = ", ".join(model.model_fields)
        return InvalidRequest(f"Unknown field {param!r} (known: {known}).", param=param)
    if error["type"] == "missing":
        return InvalidRequest(f"{param} is required.", param=param)
    return InvalidRequest(f"{param}: {error['msg']}.", param=param)


def request_schemas() -> dict[str, Any]:
    """The JSON Schemas of the bodies above, for ``components.schemas`` of the API document."""
    schemas: dict[str, Any] = {}
    for model in (CreateUser, CreateKey, Credit):
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas["Admin" + model.__name__] = schema
    return schemas
