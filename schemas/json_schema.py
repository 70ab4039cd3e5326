"""JSON Schema (draft 2020-12) generated from a contract: what producers should send.

It is a little stricter than the pipeline, never looser: numbers must be JSON numbers and
booleans JSON booleans, where the pipeline also takes "12" or "TRUE". One gap JSON Schema
cannot close: 2020-12 counts 1.0 as an integer, while the pipeline's longs take no fraction.
Unknown properties are allowed, because new optional fields are added without a new version.
"""

from __future__ import annotations

import sys
from typing import Any

from genai_apm.schemas.contract import (
    LONG_MAX,
    MAX_TIMESTAMP_MS,
    RFC3339_TEXT,
    Contract,
    Field,
    Kind,
)

DIALECT = "https://json-schema.org/draft/2020-12/schema"

# The pattern must mean the same in ECMA-262 and in Python (jsonschema), whose `$` also
# matches before a final newline: "(?![\\s\\S])" is "nothing follows" in both. The lookaheads
# refuse what the pipeline refuses beyond the shape: year 0, and the first and last day of
# the range with an offset that takes the instant out of it.
_RFC3339_PATTERN = (
    "^(?!0000-)(?!0001-01-01[Tt].*[+](?!00:00))(?!9999-12-31[Tt].*-(?!00:00))"
    + RFC3339_TEXT
    + "(?![\\s\\S])"
)
# The largest finite double: a JSON number beyond it is Infinity to the pipeline
DOUBLE_MAX = sys.float_info.max


def schema_id(contract: Contract) -> str:
    return f"urn:genai-apm:schema:{contract.slug}:v{contract.version}"


def file_name(contract: Contract) -> str:
    return f"{contract.slug}.v{contract.version}.schema.json"


def value_schema(field: Field) -> dict[str, Any]:
    match field.kind:
        case Kind.STRING:
            return {"type": "string"}
        case Kind.LONG:
            return {"type": "integer", "minimum": -LONG_MAX, "maximum": LONG_MAX}
        case Kind.DOUBLE:
            return {"type": "number", "minimum": -DOUBLE_MAX, "maximum": DOUBLE_MAX}
        case Kind.BOOLEAN:
            return {"type": "boolean"}
        case Kind.TIMESTAMP:
            return {
                "oneOf": [
                    {
                        "type": "integer",
                        "minimum": 0,
                        "maximum": MAX_TIMESTAMP_MS,
                        "description": "epoch milliseconds",
                    },
                    {
                        "type": "string",
                        "format": "date-time",
                        "pattern": _RFC3339_PATTERN,
                        "description": "RFC 3339 with a zone offset; any fraction width",
                    },
                ]
            }
    raise AssertionError(field.kind)


def property_schema(field: Field, contract: Contract) -> dict[str, Any]:
    schema: dict[str, Any] = {}
    if field.doc:
        schema["description"] = field.doc
    if field.otel:
        schema["x-otel-attribute"] = field.otel
    schema.update(value_schema(field))
    if field.minimum is not None:
        schema["minimum"] = field.minimum
    if field == contract.version_field:
        # a record for a later version goes to the dead-letter topic (schemas/README.md)
        schema["maximum"] = contract.version
    if field.allowed:
        schema["enum"] = list(field.allowed)
    if not field.required:
        if "oneOf" in schema:
            schema["oneOf"].append({"type": "null"})
        else:
            schema["type"] = [schema["type"], "null"]
        if "enum" in schema:
            schema["enum"].append(None)
    return schema


def json_schema(contract: Contract) -> dict[str, Any]:
    description = contract.doc or (
        f"{contract.name} v{contract.version}, generated from genai_apm.schemas: "
        "change the contract there, not this file."
    )
    return {
        "$schema": DIALECT,
        "$id": schema_id(contract),
        "title": contract.name,
        "description": description,
        "x-schema-version": contract.version,
        "type": "object",
        "required": [f.name for f in contract.fields if f.required],
        "properties": {f.name: property_schema(f, contract) for f in contract.fields},
        "additionalProperties": True,
    }
