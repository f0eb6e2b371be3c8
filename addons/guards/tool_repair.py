"""Tool-call arguments that are not valid JSON, repaired by translators/openai/json_repair.py's rules and
kept only when the result validates against the tool's own parameter schema (JSON Schema, the draft the
schema names, else 2020-12). Anything else (an unknown tool, a schema jsonschema cannot use, a result
the schema refuses) leaves the arguments exactly as the model sent them."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import jsonschema
import referencing.exceptions
from jsonschema.validators import validator_for

from addons.records import CallRecord
from translators import json_codec
from translators.openai.json_repair import repair

log = logging.getLogger(__name__)

# What a tool without `parameters` takes, as OpenAI reads it.
_NO_PARAMETERS: dict[str, Any] = {"type": "object"}


class ToolSchemas:
    """The function tools of one request by name; a validator is built the first time a repair of that
    tool needs one (once per request, and not at all for requests whose arguments are all valid)."""

    __slots__ = ("_checks", "_schemas", "record")

    def __init__(self, schemas: dict[str, Any], record: CallRecord) -> None:
        self._schemas = schemas
        self._checks: dict[str, Callable[[Any], bool] | None] = {}
        self.record = record

    @classmethod
    def of(cls, request: dict[str, Any], record: CallRecord) -> ToolSchemas | None:
        tools = request.get("tools")
        if not isinstance(tools, list):
            return None
        schemas = {
            fn["name"]: fn.get("parameters", _NO_PARAMETERS)
            for tool in tools
            if isinstance(tool, dict)
            and isinstance(fn := tool.get("function"), dict)
            and isinstance(fn.get("name"), str)
        }
        return cls(schemas, record) if schemas else None

    def fixed(self, name: str, arguments: str) -> str | None:
        """The repaired arguments of a call of tool `name` (counted on the call record), or None: leave
        them as they are (valid already, not repairable, or the repair does not fit the schema)."""
        repaired = repair(arguments)
        if repaired is None or not self._fits(name, json_codec.loads(repaired.text)):
            return None
        self.record.repairs += 1
        log.info("tool call %s: arguments repaired (%s)", name, ", ".join(repaired.rules))
        return repaired.text

    def _fits(self, name: str, value: Any) -> bool:
        if name not in self._checks:
            self._checks[name] = _check(self._schemas[name]) if name in self._schemas else None
        check = self._checks[name]
        if check is None:
            return False
        try:
            return check(value)
        except (jsonschema.exceptions.JSONSchemaError, referencing.exceptions.Unresolvable):
            return False  # a $ref nowhere in the schema: nothing to validate against


def _check(schema: Any) -> Callable[[Any], bool] | None:
    if not isinstance(schema, dict):
        return None
    cls = validator_for(schema, default=jsonschema.Draft202012Validator)
    try:
        cls.check_schema(schema)
    except jsonschema.exceptions.SchemaError:
        return None
    return cls(schema).is_valid  # type: ignore[no-any-return]
