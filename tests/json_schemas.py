"""What a type-driven client needs of a tool's JSON schema: every object says `"type": "object"`."""

from __future__ import annotations

from typing import Any


def untyped_objects(schema: Any, path: tuple[str, ...] = ()) -> list[str]:
    """The paths in `schema` of every subschema a client cannot tell is an object: a `$ref` (the
    MCP Inspector reads it as untyped), or one with properties whose `type` is not "object"."""
    if not isinstance(schema, dict):
        return []
    found = []
    describes_object = "properties" in schema or isinstance(schema.get("additionalProperties"), dict)
    if "$ref" in schema or (describes_object and "object" not in _types(schema)):
        found.append(".".join(path) or "(root)")
    for name, subschema in schema.get("properties", {}).items():
        found += untyped_objects(subschema, (*path, name))
    for key in ("$defs", "patternProperties"):
        for name, subschema in schema.get(key, {}).items():
            found += untyped_objects(subschema, (*path, key, name))
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        for index, subschema in enumerate(schema.get(key, [])):
            found += untyped_objects(subschema, (*path, f"{key}[{index}]"))
    for key in ("items", "additionalProperties"):
        found += untyped_objects(schema.get(key), (*path, key))
    return found


def _types(schema: dict[str, Any]) -> list[str]:
    declared = schema.get("type", [])
    return [declared] if isinstance(declared, str) else declared
