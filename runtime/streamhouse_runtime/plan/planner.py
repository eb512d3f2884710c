"""From an analyzed query to a logical plan: operators in execution order, each with its
output schema, key, repartitions and state."""

from __future__ import annotations

from streamhouse_runtime.plan.nodes import (
    CHANGE_FIELD,
    Aggregate,
    Distinct,
    Field,
    Filter,
    Join,
    MatchRecognize,
    OverAggregate,
    PatternDefinition,
    PlanNode,
    Project,
    Repartition,
    Schema,
    Sink,
    Source,
    TableChanges,
    WindowAggregate,
)
from streamhouse_runtime.sql import bound
from streamhouse_runtime.sql import types as t
from streamhouse_runtime.sql.catalog import SourceKind
from streamhouse_runtime.sql.query import AnalyzedQuery, AnalyzedStatement, Relation

WINDOW_FIELDS = ("window_start", "window_end")


def plan_statement(statement: AnalyzedStatement) -> PlanNode:
    """The plan of a persistent query (ending in a Sink) or of a transient SELECT."""
    if statement.query is None:
        raise ValueError(f"{statement.kind.value} has no query to plan")
    root = plan_query(statement.query)
    sink = statement.sink
    if sink is None:
        return root
    return Sink(
        schema=root.schema,
        input=root,
        name=sink.name,
        kind=sink.kind,
        topic=sink.topic,
        value_format=sink.value_format,
        key_format=sink.key_format,
        emit=statement.query.emit,
        partitions=sink.partitions,
    )


def _source(relation: Relation) -> Source:
    fields = tuple(
        Field(f.field, f.type)
        for f in relation.fields
        if relation.window is None or f.column not in WINDOW_FIELDS
    )
    source = relation.source
    key = tuple(f.field for f in relation.fields if f.column in source.key_columns)
    time_field = next(
        (f.field for f in relation.fields if f.column == source.timestamp_column), None
    )
    return Source(
        schema=Schema(fields, key),
        name=source.name,
        kind=source.kind,
        topic=source.topic,
        value_format=source.value_format,
        key_format=source.key_format,
        timestamp_field=time_field,
        timestamp_format=source.timestamp_format,
        alias=relation.alias if relation.alias != source.name else None,
        window_type=source.window_type,
        window_size_ms=source.window_size_ms,
    )


def _keyed_by(node: PlanNode, keys: tuple[bound.Expr, ...]) -> bool:
    """True when records already carry exactly these expressions as their key."""
    if not keys:
        return False  # a global aggregate needs every record in one partition
    names = [k.name for k in keys if isinstance(k, bound.ColumnRef)]
    return len(names) == len(keys) and list(node.schema.key) == names


def _repartition(node: PlanNode, keys: tuple[bound.Expr, ...], suffix: str) -> PlanNode:
    if _keyed_by(node, keys):
        return node
    named = tuple((f"_key_{i}", k) for i, k in enumerate(keys))
    key_names = tuple(k.name if isinstance(k, bound.ColumnRef) else n for n, k in named)
    return Repartition(Schema(node.schema.fields, key_names), node, named, suffix)


def _aggregates_a_table(query: AnalyzedQuery) -> bool:
    """GROUP BY over one TABLE: an updating aggregate (its rows change and are deleted)."""
    return (
        query.window is None
        and not query.joins
        and len(query.relations) == 1
        and query.relations[0].kind is SourceKind.TABLE
    )


def _table_changes(node: PlanNode, keys: tuple[bound.Expr, ...]) -> PlanNode:
    """A table's rows as retractions and additions, repartitioned by the group key.

    Always through a repartition topic, even when the table is keyed by the group key: the
    retraction of a row's previous value goes to its old group, which may live in another
    partition than the new one (Kafka Streams sends the two as two records)."""
    changes = TableChanges(node.schema, node)
    named = tuple((f"_key_{i}", k) for i, k in enumerate(keys))
    key_names = tuple(k.name if isinstance(k, bound.ColumnRef) else n for n, k in named)
    fields = (*node.schema.fields, Field(CHANGE_FIELD, t.INTEGER))
    return Repartition(Schema(fields, key_names), changes, named, "groupby", retractions=True)


def _referenced(expressions: list[bound.Expr]) -> set[str]:
    """Every field name the expressions read."""
    names: set[str] = set()
    pending: list[object] = list(expressions)
    while pending:
        item = pending.pop()
        if isinstance(item, bound.ColumnRef):
            names.add(item.name)
        elif isinstance(item, bound.Expr):
            for value in vars(item).values():
                if isinstance(value, bound.Expr):
                    pending.append(value)
                elif isinstance(value, tuple):
                    for element in value:
                        pending.extend(element if isinstance(element, tuple) else (element,))
    return names


def _result_key(query: AnalyzedQuery) -> tuple[str, ...]:
    """The result key's column names, in group key order (ksqlDB's rule: a grouped column
    keeps its name, or the alias the SELECT list gives it). A key the SELECT list does not
    project is named after its column, or keeps its internal name if it is an expression."""
    names: list[str] = []
    for internal, expr in query.group_keys:
        projected = [
            name
            for name, selected in query.select
            if isinstance(selected, bound.ColumnRef) and selected.name == internal
        ]
        if projected:
            name = projected[0]
        elif isinstance(expr, bound.ColumnRef):
            name = expr.name.rsplit(".", 1)[-1]
        else:
            name = internal
        unique, suffix = name, 1
        while unique.lower() in (n.lower() for n in names):
            suffix += 1
            unique = f"{name}_{suffix}"
        names.append(unique)
    return tuple(names)


def plan_query(query: AnalyzedQuery) -> PlanNode:
    node: PlanNode = _source(query.relations[0])
    for number, step in enumerate(query.joins, start=1):
        right: PlanNode = _source(query.relations[step.right])
        node = _repartition(node, step.left_keys, f"join-{number}-left")
        if query.relations[step.right].kind is SourceKind.STREAM:
            right = _repartition(right, step.right_keys, f"join-{number}-right")
        node = Join(
            schema=Schema(node.schema.fields + right.schema.fields, node.schema.key),
            left=node,
            right=right,
            kind=step.kind,
            left_keys=step.left_keys,
            right_keys=step.right_keys,
            residual=step.residual,
            left_kind=step.left_kind,
            right_kind=query.relations[step.right].kind,
            within_before_ms=step.within_before_ms,
            within_after_ms=step.within_after_ms,
            store=f"join-{number}",
            grace_ms=step.grace_ms,
        )
    if query.where is not None:
        node = Filter(node.schema, node, query.where)
    if query.match is not None:
        match = query.match
        node = _repartition(node, match.partition_by, "match")
        fields = tuple(
            Field(name, expr.type)
            for name, expr in zip(match.partition_names, match.partition_by, strict=True)
        ) + tuple(Field(name, expr.type) for name, expr in match.measures)
        node = MatchRecognize(
            schema=Schema(fields, match.partition_names),
            input=node,
            partition_by=match.partition_by,
            order_by=match.order_field or "ROWTIME",
            pattern=match.pattern,
            definitions=tuple(PatternDefinition(v, c) for v, c in match.definitions),
            measures=match.measures,
            after_match=match.after_match,
            within_ms=match.within_ms,
        )
    if query.over is not None:
        over = query.over
        node = _repartition(node, over.partition_by, "over")
        node = OverAggregate(
            schema=Schema(
                node.schema.fields + tuple(Field(n, a.type) for n, a in over.aggregates),
                node.schema.key,
            ),
            input=node,
            partition_by=over.partition_by,
            order_by=over.order_field or "ROWTIME",
            frame=f"{over.frame} {over.frame_size}{'ms' if over.frame == 'RANGE' else ''}",
            frame_size=over.frame_size,
            aggregates=over.aggregates,
        )
    if query.post_where is not None:
        node = Filter(node.schema, node, query.post_where)
    if query.is_aggregate:
        keys = tuple(k for _, k in query.group_keys)
        updating = _aggregates_a_table(query)
        if updating or not _keyed_by(node, keys):
            # Only what the aggregation reads crosses the repartition topic.
            needed = _referenced([*keys, *(a for _, call in query.aggregates for a in call.args)])
            if query.window is not None and query.window.time_field:
                needed.add(query.window.time_field)
            kept = tuple(f for f in node.schema.fields if f.name in needed)
            if len(kept) < len(node.schema.fields):
                kept_names = {f.name for f in kept}
                node = Project(
                    Schema(kept, tuple(k for k in node.schema.key if k in kept_names)),
                    node,
                    tuple((f.name, bound.ColumnRef(f.type, f.name)) for f in kept),
                )
        node = _table_changes(node, keys) if updating else _repartition(node, keys, "groupby")
        key_names = tuple(name for name, _ in query.group_keys)
        result_key = _result_key(query)
        fields = tuple(Field(name, expr.type) for name, expr in query.group_keys)
        fields += tuple(Field(name, call.type) for name, call in query.aggregates)
        if query.window is not None:
            fields += tuple(Field(name, t.TIMESTAMP) for name in WINDOW_FIELDS)
            node = WindowAggregate(
                schema=Schema(fields, key_names),
                input=node,
                window=query.window,
                group_keys=tuple(query.group_keys),
                aggregates=tuple(query.aggregates),
                emit=query.emit,
                result_key=result_key,
            )
        else:
            node = Aggregate(
                schema=Schema(fields, key_names),
                input=node,
                group_keys=tuple(query.group_keys),
                aggregates=tuple(query.aggregates),
                result_key=result_key,
                updating=updating,
            )
        if query.having is not None:
            node = Filter(node.schema, node, query.having)
    if query.partition_by:
        # PARTITION BY re-keys by expressions over the input rows, before the projection.
        key_names = tuple(
            k.name if isinstance(k, bound.ColumnRef) else n for n, k in query.partition_by
        )
        node = Repartition(
            Schema(node.schema.fields, key_names), node, tuple(query.partition_by), "partition-by"
        )
    project_fields = tuple(Field(name, expr.type) for name, expr in query.select)
    node = Project(Schema(project_fields, query.key_fields), node, tuple(query.select))
    if query.distinct:
        node = Distinct(node.schema, node)
    return node
