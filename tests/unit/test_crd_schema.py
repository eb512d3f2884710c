from __future__ import annotations

from typing import Any

import pytest

from streamhouse_operator import crd

pytestmark = pytest.mark.unit


def _walk(schema: dict[str, Any]) -> list[dict[str, Any]]:
    found = [schema]
    for sub in schema.get("properties", {}).values():
        found += _walk(sub)
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            found += _walk(schema[key])
    return found


@pytest.mark.parametrize("schema", [crd.spec_schema(), crd.status_schema()], ids=["spec", "status"])
def test_schemas_are_structural(schema: dict[str, Any]) -> None:
    """The API server rejects $ref, anyOf, titles and boolean additionalProperties."""
    for node in _walk(schema):
        assert "$ref" not in node and "anyOf" not in node and "title" not in node
        assert not isinstance(node.get("additionalProperties"), bool)
        assert "type" in node, node


def test_only_kopfs_bookkeeping_keeps_unknown_fields() -> None:
    """Toleration items and resources are modelled; status is typed except status.kopf."""
    preserving = [
        node
        for schema in (crd.spec_schema(), crd.status_schema())
        for node in _walk(schema)
        if node.get("x-kubernetes-preserve-unknown-fields")
    ]
    assert preserving == [crd.status_schema()["properties"]["kopf"]]


def test_every_cel_rule_explains_itself() -> None:
    root = crd.custom_resource_definition()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    rules = [
        rule
        for node in [root, *_walk(crd.spec_schema())]
        for rule in node.get("x-kubernetes-validations", [])
    ]
    # name, dead-letter topic, limits, storage; consumer and producer overrides: names,
    # no code (E420), no weaker delivery (E421)
    assert len(rules) == 10
    for rule in rules:
        assert rule["message"] and rule["rule"]


def test_printer_columns_and_scale_subresource() -> None:
    version = crd.custom_resource_definition()["spec"]["versions"][0]
    assert [c["name"] for c in version["additionalPrinterColumns"]] == [
        "State",
        "Parallelism",
        "Ready",
        "Lag",
        "Input/s",
        "Age",
    ]
    assert version["subresources"]["scale"] == {
        "specReplicasPath": ".spec.parallelism",
        "statusReplicasPath": ".status.replicas",
        "labelSelectorPath": ".status.selector",
    }
    status = crd.status_schema()["properties"]
    for column in version["additionalPrinterColumns"]:
        section, _, field = column["jsonPath"].lstrip(".").partition(".")
        if section == "status":
            assert field in status, column


def test_conditions_are_a_map_keyed_by_type() -> None:
    conditions = crd.status_schema()["properties"]["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    assert conditions["items"]["required"] == ["type", "status", "reason", "lastTransitionTime"]


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
