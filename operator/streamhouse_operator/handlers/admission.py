"""Validating admission: `kubectl apply` refuses what reconcile would mark FAILED, with the
SQL front end's own `line:column` error. Reconcile repeats the check and stays the authority
(the webhook may be disabled or down)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from streamhouse_operator.models import streamquery as model
from streamhouse_operator.policy import Policy
from streamhouse_runtime.program import load_single_query
from streamhouse_runtime.sql.catalog import Source
from streamhouse_runtime.sql.errors import SqlValidationError


def problem(
    spec: Mapping[str, Any],
    policy: Policy | None = None,
    shared: Mapping[str, Source] | None = None,
) -> str | None:
    """Why this spec cannot run (or may not, under the administrator's `policy`), as one line
    for the user; None when it can. Names the SQL does not declare resolve against `shared`,
    the namespace's catalog."""
    try:
        parsed = model.StreamQuerySpec.model_validate(dict(spec))
    except ValidationError as invalid:
        first = invalid.errors()[0]
        return f"spec.{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
    violation = policy.violation(parsed) if policy is not None else None
    if violation is not None:
        return violation.render()
    try:
        load_single_query(
            parsed.sql,
            shared,
            udf_directory_mounted=parsed.udfs is not None,
            compatibility=parsed.compatibility,
        )
    except SqlValidationError as invalid:
        return "; ".join(error.render("spec.sql") for error in invalid.errors[:5])
    return None
