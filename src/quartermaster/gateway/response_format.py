"""A chat's `response_format`, as OpenAI defines it: plain text, any JSON, or JSON of a schema.

A schema is checked here, before anything is held, to be the object OpenAI asks for and of a
size a model can be held to: it is forwarded to upstreams, and the embedded model turns it into
a grammar (providers/local_chat.py), whose size grows with the schema's.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

MAX_SCHEMA_CHARS = 16_000
MAX_SCHEMA_DEPTH = 32
"""Nested objects and arrays in a schema's JSON (a level of the schema takes about two)."""


class JsonSchema(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    description: str | None = Field(default=None, max_length=2_000)
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None

    @field_validator("schema_")
    @classmethod
    def _bounded(cls, schema: dict[str, Any] | None) -> dict[str, Any] | None:
        if schema is not None:
            _check_size(schema)
        return schema


class ResponseFormat(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchema | None = None

    @model_validator(mode="after")
    def _schema_with_its_type(self) -> ResponseFormat:
        if (self.type == "json_schema") != (self.json_schema is not None):
            raise PydanticCustomError(
                "invalid_value", "json_schema is given exactly when type is json_schema"
            )
        return self

    def forwarded(self) -> dict[str, Any] | None:
        """What the model gets; None for plain text, which every model gives anyway."""
        if self.type == "text":
            return None
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


def _check_size(schema: dict[str, Any]) -> None:
    """Refuses a schema deeper or longer than the bounds (the depth first, without recursion,
    so that measuring the length cannot recurse too deep)."""
    level: list[Any] = [schema]
    for _ in range(MAX_SCHEMA_DEPTH):
        level = [
            child
            for node in level
            for child in (node.values() if isinstance(node, dict) else node)
            if isinstance(child, dict | list)
        ]
        if not level:
            break
    else:
        raise _too_big("nests deeper than {limit} levels", MAX_SCHEMA_DEPTH)
    if len(json.dumps(schema)) > MAX_SCHEMA_CHARS:
        raise _too_big("is longer than {limit} characters", MAX_SCHEMA_CHARS)


def _too_big(what: str, limit: int) -> PydanticCustomError:
    return PydanticCustomError("invalid_value", f"the schema {what}", {"limit": limit})
