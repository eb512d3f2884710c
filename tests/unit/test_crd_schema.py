from __future__ import annotations

from typing import Any

import pytest

from streamhouse_operator import crd

pytestmark = pytest.mark.unit


def _walk(schema: dict[str, Any]) -> list[dict[str, Any]]:
    found = [schema]
    for sub in schema.get("properties", {}).values():
        found += _walk(sub)
    if isinstance(schema.get("items"), dict):
        found += _walk(schema["items"])
    return found


def test_spec_schema_is_structural() -> None:
    """The API server rejects $ref, anyOf, titles and boolean additionalProperties."""
    for node in _walk(crd.spec_schema()):
        assert "$ref" not in node and "anyOf" not in node and "title" not in node
        assert not isinstance(node.get("additionalProperties"), bool)
        assert "type" in node, node


def test_optional_fields_become_nullable_and_enums_keep_their_values() -> None:
    properties = crd.spec_schema()["properties"]
    assert properties["restartNonce"] == {
        "description": "Change it to restart every pod of the query.",
        "minimum": 0,
        "type": "integer",
        "nullable": True,
    }
    assert properties["upgradeMode"]["enum"] == ["stateless", "last-state", "reset"]
    assert properties["sql"]["maxLength"] > 0
    assert crd.spec_schema()["required"] == ["sql", "kafka"]


def test_a_union_of_two_real_types_is_refused() -> None:
    with pytest.raises(ValueError, match="union"):
        crd._structural({"anyOf": [{"type": "string"}, {"type": "integer"}]}, {})
