"""Generates the StreamQuery CustomResourceDefinition from the pydantic models.

`streamhouse crd` prints it; `crds/streamquery.yaml` is its committed output, and a unit
test fails when that file is stale.
"""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import BaseModel

from streamhouse_operator.models import status as status_model
from streamhouse_operator.models import streamquery as model

# JSON-schema keywords a structural OpenAPI v3 schema of a CRD accepts as they are.
_KEPT = {
    "type",
    "description",
    "enum",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "pattern",
    "format",
    "items",
    "properties",
    "required",
    "default",
    "minItems",
    "maxItems",
    "maxProperties",
    "additionalProperties",
}


def _structural(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """Turn pydantic's JSON schema into the structural subset the API server requires:
    $refs inlined, Optional (anyOf with null) made nullable, titles dropped."""
    if "$ref" in schema:
        target = defs[schema["$ref"].rsplit("/", 1)[-1]]
        merged = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
        return _structural(merged, defs)
    if "anyOf" in schema:
        options = [option for option in schema["anyOf"] if option.get("type") != "null"]
        nullable = len(options) < len(schema["anyOf"])
        if len(options) != 1:
            raise ValueError(f"cannot express a union in a CRD schema: {schema}")
        rest = {k: v for k, v in schema.items() if k != "anyOf"}
        single = _structural({**options[0], **rest}, defs)
        if nullable:
            single["nullable"] = True
        return single
    result: dict[str, Any] = {}
    for key, value in schema.items():
        # x-kubernetes-* extensions (CEL rules, list types) come from json_schema_extra.
        extension = key.startswith("x-kubernetes-")
        if (key not in _KEPT and not extension) or (key == "default" and value is None):
            continue
        if key == "additionalProperties" and isinstance(value, bool):
            continue  # structural schemas forbid a boolean here; the API server prunes anyway
        if key == "properties":
            result[key] = {name: _structural(sub, defs) for name, sub in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            result[key] = _structural(value, defs)
        else:
            result[key] = value
    if "enum" in result and "type" not in result:
        result["type"] = "string"
    return result


def _model_schema(model_class: type[BaseModel]) -> dict[str, Any]:
    schema = model_class.model_json_schema(by_alias=True)
    return _structural(schema, schema.get("$defs", {}))


def spec_schema() -> dict[str, Any]:
    """The structural OpenAPI schema of `.spec`."""
    return _model_schema(model.StreamQuerySpec)


def status_schema() -> dict[str, Any]:
    """The structural OpenAPI schema of `.status`."""
    schema = _model_schema(status_model.StreamQueryStatus)
    # kopf keeps handler progress (retries, delays) under status.kopf by default; a pruned
    # subtree would make it lose track of them. Handler return values, which kopf writes to
    # status.<handler id>, are still pruned: handlers should patch status explicitly.
    schema["properties"]["kopf"] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    return schema


PRINTER_COLUMNS: list[dict[str, Any]] = [
    {"name": "State", "type": "string", "jsonPath": ".status.lifecycleState"},
    {"name": "Parallelism", "type": "integer", "jsonPath": ".spec.parallelism"},
    {"name": "Ready", "type": "integer", "jsonPath": ".status.readyReplicas"},
    {"name": "Lag", "type": "integer", "jsonPath": ".status.lag"},
    {"name": "Input/s", "type": "number", "jsonPath": ".status.inputRate"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


def custom_resource_definition() -> dict[str, Any]:
    """The whole CRD as a dict, ready for YAML or the API."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{model.PLURAL}.{model.GROUP}"},
        "spec": {
            "group": model.GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": model.KIND,
                "listKind": f"{model.KIND}List",
                "plural": model.PLURAL,
                "singular": model.SINGULAR,
                "shortNames": model.SHORT_NAMES,
                "categories": ["streamhouse"],
            },
            "versions": [
                {
                    "name": model.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {
                        "status": {},
                        # `kubectl scale sq/x --replicas=3` and HPAs set spec.parallelism.
                        "scale": {
                            "specReplicasPath": ".spec.parallelism",
                            "statusReplicasPath": ".status.replicas",
                            "labelSelectorPath": ".status.selector",
                        },
                    },
                    "additionalPrinterColumns": PRINTER_COLUMNS,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "required": ["spec"],
                            "properties": {
                                "spec": spec_schema(),
                                "status": status_schema(),
                            },
                            "x-kubernetes-validations": [model.NAME_RULE],
                        }
                    },
                }
            ],
        },
    }


def render() -> str:
    """The CRD as the YAML committed under crds/."""
    header = "# Generated from streamhouse_operator.models by `streamhouse crd`. Do not edit.\n"
    return header + yaml.safe_dump(custom_resource_definition(), sort_keys=False)


CATALOG_PRINTER_COLUMNS: list[dict[str, Any]] = [
    {"name": "Declares", "type": "string", "jsonPath": ".status.declares"},
    {"name": "Topic", "type": "string", "jsonPath": ".status.topic"},
    {
        "name": "Valid",
        "type": "string",
        "jsonPath": '.status.conditions[?(@.type=="Validated")].status',
    },
    {"name": "Used by", "type": "string", "jsonPath": ".status.usedBy"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


def catalog_resource_definition() -> dict[str, Any]:
    """The StreamSource CRD (the shared catalog) as a dict."""
    from streamhouse_operator.models import streamsource

    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{streamsource.PLURAL}.{model.GROUP}"},
        "spec": {
            "group": model.GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": streamsource.KIND,
                "listKind": f"{streamsource.KIND}List",
                "plural": streamsource.PLURAL,
                "singular": streamsource.SINGULAR,
                "shortNames": streamsource.SHORT_NAMES,
                "categories": ["streamhouse"],
            },
            "versions": [
                {
                    "name": model.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": CATALOG_PRINTER_COLUMNS,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "required": ["spec"],
                            "properties": {
                                "spec": _model_schema(streamsource.StreamSourceSpec),
                                "status": {
                                    **_model_schema(streamsource.StreamSourceStatus),
                                },
                            },
                        }
                    },
                }
            ],
        },
    }


def render_catalog() -> str:
    """The StreamSource CRD as the YAML committed under crds/."""
    header = (
        "# Generated from streamhouse_operator.models by `streamhouse crd --catalog`. "
        "Do not edit.\n"
    )
    return header + yaml.safe_dump(catalog_resource_definition(), sort_keys=False)
