"""Custom sqlglot expression nodes for StreamHouse's streaming SQL.

The parser in `streamhouse_runtime.sql.dialect` builds these; the analyzer consumes them.  Node
class names and arg names are a contract with the analyzer: change them only together.

String-valued args (``kind``, ``bound``, ``language``) hold upper-case Python strings, flags
(``replace``, ``exists``) hold Python bools, and list args are always lists (possibly empty), so
the analyzer never has to distinguish "missing" from "empty".
"""

from __future__ import annotations

import typing as t

from sqlglot import exp

__all__ = [
    "CreateAs",
    "CreateFunction",
    "CreateSource",
    "DropSource",
    "Emit",
    "FieldAccess",
    "GroupWindow",
    "GroupWindowBound",
    "InsertInto",
    "KeyColumnConstraint",
    "KsqlWindow",
    "PartitionByClause",
    "WindowTableFunction",
    "Within",
]

# ---------------------------------------------------------------------------------------------
# Statements
# ---------------------------------------------------------------------------------------------


class CreateSource(exp.Expression):
    """``CREATE [OR REPLACE] STREAM|TABLE [IF NOT EXISTS] name (cols) [WITH (props)]``.

    ``columns`` holds `exp.ColumnDef` nodes (empty when the schema comes from a registry),
    ``properties`` holds `exp.Property(this=exp.Identifier(lower-case key), value=literal)`.
    """

    arg_types: t.ClassVar[dict[str, bool]] = {
        "this": True,
        "kind": True,
        "columns": False,
        "properties": False,
        "replace": False,
        "exists": False,
    }


class CreateAs(exp.Expression):
    """``CREATE [OR REPLACE] STREAM|TABLE [IF NOT EXISTS] name [WITH (props)] AS <query>``."""

    arg_types: t.ClassVar[dict[str, bool]] = {
        "this": True,
        "kind": True,
        "properties": False,
        "expression": True,
        "replace": False,
        "exists": False,
    }


class InsertInto(exp.Expression):
    """``INSERT INTO name <query>``: a persistent query feeding an existing stream."""

    arg_types: t.ClassVar[dict[str, bool]] = {"this": True, "expression": True}


class DropSource(exp.Expression):
    """``DROP STREAM|TABLE [IF EXISTS] name``."""

    arg_types: t.ClassVar[dict[str, bool]] = {"this": True, "kind": True, "exists": False}


class CreateFunction(exp.Expression):
    """``CREATE [OR REPLACE] FUNCTION name(params) RETURNS type LANGUAGE lang AS 'definition'``.

    ``language`` is the upper-cased identifier as written (the analyzer decides which are
    supported); ``definition`` is the string literal; ``replace`` is an optional extra flag.
    """

    arg_types: t.ClassVar[dict[str, bool]] = {
        "this": True,
        "params": False,
        "returns": True,
        "language": True,
        "definition": True,
        "replace": False,
    }


# ---------------------------------------------------------------------------------------------
# Column definitions and expressions
# ---------------------------------------------------------------------------------------------


class KeyColumnConstraint(exp.Expression, exp.ColumnConstraintKind):
    """ksqlDB's ``col TYPE KEY``: the column is read from the Kafka record key."""

    arg_types: t.ClassVar[dict[str, bool]] = {}


class FieldAccess(exp.Expression):
    """ksqlDB struct dereference ``this->field`` (``expression`` is an `exp.Identifier`).

    A dedicated node rather than `exp.Dot`: ``a.b`` already parses as a qualified column, so
    rendering a Dot back as ``a.b`` would not re-parse to the same tree.
    """

    arg_types: t.ClassVar[dict[str, bool]] = {"this": True, "expression": True}

    @property
    def output_name(self) -> str:
        return str(self.expression.name)


# ---------------------------------------------------------------------------------------------
# Query-level clauses (set as extra args on exp.Select / exp.Join)
# ---------------------------------------------------------------------------------------------


class Emit(exp.Expression):
    """ksqlDB ``EMIT CHANGES`` / ``EMIT FINAL``; ``this`` is ``'CHANGES'`` or ``'FINAL'``.

    Stored on the Select as arg ``emit``.
    """

    arg_types: t.ClassVar[dict[str, bool]] = {"this": True}


class KsqlWindow(exp.Expression):
    """ksqlDB ``WINDOW TUMBLING|HOPPING|SESSION (...)``, stored on the Select as ``ksql_window``.

    Every duration is an `exp.Interval` with a string-literal amount and a singular upper-case
    unit: ``SIZE 5 MINUTES`` becomes ``Interval(this='5', unit=Var('MINUTE'))``.  A SESSION
    window's inactivity gap is in ``gap``; HOPPING's ``ADVANCE BY`` is ``advance``.
    """

    arg_types: t.ClassVar[dict[str, bool]] = {
        "kind": True,
        "size": False,
        "advance": False,
        "gap": False,
        "retention": False,
        "grace": False,
    }


class PartitionByClause(exp.Expression):
    """ksqlDB re-keying ``PARTITION BY expr[, ...]``, stored on the Select as ``partition_by``."""

    arg_types: t.ClassVar[dict[str, bool]] = {"expressions": True}


class Within(exp.Expression):
    """A stream-stream join window, stored on `exp.Join` as arg ``within``.

    ``this`` is set for the symmetric ``WITHIN INTERVAL '1' HOUR`` / ``WITHIN 1 HOUR``;
    ``before``/``after`` for ksqlDB's ``WITHIN (1 HOUR, 2 HOURS)``.  ``grace`` (optional extra)
    holds ksqlDB's trailing ``GRACE PERIOD <duration>``.
    """

    arg_types: t.ClassVar[dict[str, bool]] = {
        "this": False,
        "before": False,
        "after": False,
        "grace": False,
    }


class GroupWindow(exp.Expression):
    """Flink's legacy group-window functions ``TUMBLE/HOP/SESSION(time_col, ...)``.

    ``HOP(ts, slide, size)`` keeps Flink's argument order on the way in; the node names the roles
    so nobody has to remember it.
    """

    arg_types: t.ClassVar[dict[str, bool]] = {
        "kind": True,
        "this": True,
        "size": False,
        "slide": False,
        "gap": False,
    }


class GroupWindowBound(exp.Expression):
    """Flink's ``TUMBLE_START/..._END(ts, ...)`` etc.; ``bound`` is ``'START'`` or ``'END'``."""

    arg_types: t.ClassVar[dict[str, bool]] = {
        "kind": True,
        "bound": True,
        "this": True,
        "size": False,
        "slide": False,
        "gap": False,
    }


class WindowTableFunction(exp.Expression):
    """Flink's windowing TVF ``TABLE(TUMBLE|HOP|SESSION(TABLE t, DESCRIPTOR(col), ...))``.

    Appears wherever an `exp.Table` can (``FROM`` or a join); ``alias`` is an `exp.TableAlias`.
    ``partition_by`` is only used by SESSION (``TABLE t PARTITION BY k``).
    """

    arg_types: t.ClassVar[dict[str, bool]] = {
        "kind": True,
        "this": True,
        "time_column": True,
        "size": False,
        "slide": False,
        "gap": False,
        "partition_by": False,
        "alias": False,
    }
