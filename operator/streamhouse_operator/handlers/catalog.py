"""The shared catalog on the cluster: StreamSource objects of a namespace as the catalog its
queries resolve names against, a declaration's validation and status, the refusal to delete
one that queries use, and the registration of a query's output.

A changed declaration reaches its queries through their periodic re-check (every
STREAMHOUSE_OBSERVE_INTERVAL_S): each reconcile resolves the catalog again, and the SQL the
pods run (the used declarations in front of the query's own SQL) is compared with the running
one like any SQL change, so a compatible change rolls out under the query's upgradeMode and an
incompatible one is refused while the old query keeps running.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from streamhouse_operator.kube import Kube
from streamhouse_operator.models import streamquery as model
from streamhouse_operator.models import streamsource as catalog_model
from streamhouse_operator.models.status import ConditionStatus, set_condition
from streamhouse_runtime.sql.catalog import Source
from streamhouse_runtime.sql.declarations import (
    Declaration,
    parse_declaration,
    referenced_names,
    render_ddl,
)
from streamhouse_runtime.sql.errors import ErrorCode, SqlError, SqlValidationError

log = logging.getLogger(__name__)
VALIDATED = "Validated"


@dataclass
class NamespaceCatalog:
    """The valid declarations of a namespace by SQL name, and which object holds each."""

    sources: dict[str, Source] = field(default_factory=dict)
    objects: dict[str, str] = field(default_factory=dict)  # SQL name -> StreamSource name


def _declarations(kube: Kube, namespace: str) -> list[tuple[str, Declaration | None]]:
    found: list[tuple[str, Declaration | None]] = []
    for item in kube.list(catalog_model.API_VERSION, catalog_model.KIND, namespace, ""):
        name = item["metadata"]["name"]
        try:
            found.append((name, parse_declaration(str(item["spec"]["sql"]), name)))
        except (SqlValidationError, KeyError, TypeError):
            found.append((name, None))
    return found


def namespace_catalog(kube: Kube, namespace: str) -> NamespaceCatalog:
    """The catalog the namespace's queries read. Invalid declarations are left out (their own
    status says why); of two declaring one name, the first by object name wins."""
    if not kube.has_kind(catalog_model.API_VERSION, catalog_model.KIND):
        return NamespaceCatalog()
    result = NamespaceCatalog()
    for object_name, declaration in sorted(_declarations(kube, namespace), key=lambda d: d[0]):
        if declaration is not None and declaration.name not in result.sources:
            result.sources[declaration.name] = declaration.source
            result.objects[declaration.name] = object_name
    return result


def declaration_problem(
    kube: Kube | None, namespace: str, name: str, spec: Mapping[str, Any]
) -> SqlError | None:
    """Why a StreamSource spec is invalid (E430, E431 or the SQL front end's code)."""
    try:
        declaration = parse_declaration(str(spec.get("sql") or ""), name)
    except SqlValidationError as invalid:
        return invalid.errors[0]
    if kube is None:
        return None
    for other_name, other in _declarations(kube, namespace):
        if other_name != name and other is not None and other.name == declaration.name:
            return SqlError(
                ErrorCode.DUPLICATE_DECLARATION,
                f"{declaration.source.kind.value} {declaration.source.name} is already declared "
                f"by StreamSource {other_name}",
                1,
                1,
            )
    return None


def users(kube: Kube, namespace: str, sql_name: str) -> list[str]:
    """StreamQueries of the namespace that read `sql_name` from the catalog (their SQL names
    it without declaring it), other than the query whose output it is."""
    found = []
    for query in kube.list(model.API_VERSION, model.KIND, namespace, ""):
        sql = str((query.get("spec") or {}).get("sql") or "")
        recorded = (query.get("status") or {}).get("catalogSources") or []
        if sql_name in referenced_names(sql) or sql_name in recorded:
            found.append(str(query["metadata"]["name"]))
    return sorted(found)


def delete_problem(kube: Kube, namespace: str, name: str, spec: Mapping[str, Any]) -> str | None:
    """Why deleting this StreamSource is refused: queries read it (E432)."""
    try:
        declaration = parse_declaration(str(spec.get("sql") or ""), name)
    except SqlValidationError:
        return None  # an invalid declaration is used by no query
    readers = users(kube, namespace, declaration.name)
    if not readers:
        return None
    return (
        f"error[{ErrorCode.DECLARATION_IN_USE.value}]: {declaration.source.kind.value} "
        f"{declaration.source.name} is read by StreamQuery {', '.join(readers)}: delete or "
        "change those queries first"
    )


def source_status(
    kube: Kube,
    namespace: str,
    name: str,
    generation: int,
    spec: Mapping[str, Any],
    status: Mapping[str, Any],
    now: datetime | None = None,
) -> catalog_model.StreamSourceStatus:
    """Reconcile of a StreamSource: validate it, say what it declares and who reads it."""
    now = now or datetime.now(UTC)
    previous = [
        c
        for c in catalog_model.StreamSourceStatus.model_validate(dict(status)).conditions
        if c.type == VALIDATED
    ]
    problem = declaration_problem(kube, namespace, name, spec)
    if problem is not None:
        message = f"spec.sql:{problem.line}:{problem.column}: error[{problem.code.value}]: "
        conditions = set_condition(
            previous,
            VALIDATED,
            ConditionStatus.FALSE,
            "InvalidDeclaration",
            message + problem.message,
            generation,
            now,
        )
        return catalog_model.StreamSourceStatus(
            observed_generation=generation, conditions=conditions
        )
    declaration = parse_declaration(str(spec["sql"]), name)
    source = declaration.source
    declares = f"{source.kind.value} {source.name}"
    conditions = set_condition(
        previous, VALIDATED, ConditionStatus.TRUE, "Valid", declares, generation, now
    )
    return catalog_model.StreamSourceStatus(
        observed_generation=generation,
        declares=declares,
        topic=source.topic,
        conditions=conditions,
        used_by=users(kube, namespace, declaration.name),
    )


def output_source(query_name: str, namespace: str, uid: str, sink: Source) -> dict[str, Any]:
    """The StreamSource that registers a query's output, owned by the query (it goes with it)."""
    return {
        "apiVersion": catalog_model.API_VERSION,
        "kind": catalog_model.KIND,
        "metadata": {
            "name": f"{query_name}-output",
            "namespace": namespace,
            "labels": {catalog_model.OUTPUT_OF_LABEL: query_name},
            "ownerReferences": [
                {
                    "apiVersion": model.API_VERSION,
                    "kind": model.KIND,
                    "name": query_name,
                    "uid": uid,
                    "controller": True,
                    "blockOwnerDeletion": False,
                }
            ],
        },
        "spec": {
            "sql": render_ddl(sink),
            "description": f"Output of StreamQuery {query_name}, registered by the operator.",
        },
    }
