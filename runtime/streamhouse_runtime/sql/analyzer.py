"""Semantic analysis: a SQL text in, a checked and typed `Program` out, or exact errors.

`analyze(text)` is the front end's single entry point. `program.load_single_query`, which
`streamhouse validate`, the operator's admission webhook and reconcile, and `streamhouse run`
all call, builds on it: what that accepts, the runtime can run.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import NoReturn

from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from streamhouse_runtime.sql import bound, nodes
from streamhouse_runtime.sql import types as t
from streamhouse_runtime.sql.binder import (
    Binder,
    Fail,
    Intercept,
    call_parts,
    contains_aggregate,
    interval_ms,
    is_aggregate_call,
)
from streamhouse_runtime.sql.catalog import (
    Catalog,
    Column,
    Format,
    Function,
    SharedCatalog,
    Source,
    SourceKind,
)
from streamhouse_runtime.sql.compatibility import (
    Compatibility,
    ksqldb_function_rules,
    time_unit_arguments,
    upper_case_unquoted,
)
from streamhouse_runtime.sql.ddl import (
    UnsupportedType,
    check_topic,
    property_map,
    source_from_ddl,
    sql_type,
    topic_setting,
)
from streamhouse_runtime.sql.dialect import LANGUAGE_OFFSET_META, NestingTooDeep, parse_statements
from streamhouse_runtime.sql.errors import (
    ErrorCode,
    SqlError,
    SqlValidationError,
    suggestion,
)
from streamhouse_runtime.sql.limits import check_limits, position, small_int
from streamhouse_runtime.sql.pattern import (
    PatternAlt,
    PatternConcat,
    PatternError,
    PatternNode,
    PatternQuantified,
    PatternVar,
    parse_pattern,
)
from streamhouse_runtime.sql.positions import Locator
from streamhouse_runtime.sql.query import (
    AnalyzedQuery,
    AnalyzedStatement,
    EmitMode,
    JoinKind,
    JoinStep,
    MatchSpec,
    OverSpec,
    Program,
    Relation,
    RelationField,
    StatementKind,
    WindowKind,
    WindowSpec,
    WindowSyntax,
)
from streamhouse_runtime.sql.tree_checks import check_trees, deepest_node
from streamhouse_runtime.sql.types import TypeKind
from streamhouse_runtime.sql.udf_sources import (
    ENTRY_POINT_GROUP,
    definition_problem,
    entry_point_value,
    is_well_formed,
)

ROWTIME = "ROWTIME"
SOURCE_WINDOW_BOUNDS = ("WINDOWSTART", "WINDOWEND")  # columns of a windowed source
SINK_PROPERTIES = {
    "kafka_topic",
    "value_format",
    "key_format",
    "format",
    "partitions",
    "replicas",
    "timestamp",
    "timestamp_format",
    "value_delimiter",
}
_WINDOW_KINDS = {
    "TUMBLE": WindowKind.TUMBLING,
    "TUMBLING": WindowKind.TUMBLING,
    "HOP": WindowKind.HOPPING,
    "HOPPING": WindowKind.HOPPING,
    "SESSION": WindowKind.SESSION,
}
_JOIN_KINDS = {
    "": JoinKind.INNER,
    "LEFT": JoinKind.LEFT,
    "RIGHT": JoinKind.RIGHT,
    "FULL": JoinKind.FULL,
}


class _Stop(Exception):
    """Carries the first error of a statement out of deep analysis."""

    def __init__(self, error: SqlError) -> None:
        super().__init__(error.message)
        self.error = error


def analyze(
    text: str,
    shared: Mapping[str, Source] | None = None,
    compatibility: Compatibility = Compatibility.DEFAULT,
) -> Program:
    """Parse and check every statement; raise SqlValidationError listing every problem.

    `compatibility` picks whose naming and output conventions the program follows
    (`sql/compatibility.py`); it is kept on the program for the executors.

    `shared` is the namespace's catalog (StreamSource declarations, by lower-case name):
    names the text reads but does not declare resolve against it, and a declaration in the
    text replaces a shared one of the same name. `program.catalog.shared_used` says which
    shared declarations the text used."""
    problem = check_limits(text)
    if problem is not None:
        raise SqlValidationError([problem])
    try:
        statements: list[exp.Expr] = [s for s in parse_statements(text) if s is not None]
    except ParseError as error:
        raise SqlValidationError([_syntax_error(text, error)]) from None
    except NestingTooDeep as too_deep:
        raise SqlValidationError([_too_deep(*position(text, too_deep.offset))]) from None
    except RecursionError:
        raise SqlValidationError([_too_deep(1, 1)]) from None
    except (TokenError, ValueError) as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise SqlValidationError([SqlError(ErrorCode.SYNTAX, message, 1, 1)]) from None
    time_unit_arguments(statements)
    if compatibility is Compatibility.KSQLDB:
        upper_case_unquoted(statements)
        ksqldb_function_rules(statements)
        shared = _shared_under(shared, compatibility)
    analyzer = _ProgramAnalyzer(text, shared, compatibility)
    # Long operator chains (a + a + ... or NOT NOT ...) nest without parentheses.
    problem = check_trees(statements, analyzer.locator)
    if problem is not None:
        raise SqlValidationError([problem])
    try:
        return analyzer.run(statements)
    except RecursionError:
        deepest = deepest_node(statements)
        line, column = analyzer.locator.of(deepest) if deepest is not None else (1, 1)
        raise SqlValidationError([_too_deep(line, column)]) from None


def _shared_under(
    shared: Mapping[str, Source] | None, compatibility: Compatibility
) -> Mapping[str, Source] | None:
    """The shared declarations as the pods read them under `compatibility`: a pod runs their
    DDL text in front of the query (`declarations.prelude`), so admission and reconcile see
    the names that text gives under the mode (upper-cased under ksqldb)."""
    if not shared:
        return shared
    from streamhouse_runtime.sql.declarations import render_ddl  # it imports this module

    converted: dict[str, Source] = {}
    for key, source in shared.items():
        declared = analyze(render_ddl(source), None, compatibility).catalog.sources
        converted[key] = replace(next(iter(declared.values())), derived=source.derived)
    return converted


def _too_deep(line: int, column: int) -> SqlError:
    return SqlError(
        ErrorCode.NESTING_TOO_DEEP,
        "the statement nests expressions too deeply to analyze here; split it up",
        line,
        column,
    )


def _syntax_error(text: str, error: ParseError) -> SqlError:
    details = error.errors[0] if error.errors else {}
    description = str(details.get("description") or str(error).splitlines()[0])
    line = details.get("line")
    column = details.get("col")
    highlight = str(details.get("highlight") or "")
    if isinstance(line, int) and isinstance(column, int):
        # sqlglot reports the column of the token's last character.
        column = max(1, column - len(highlight) + 1) if highlight else max(1, column)
        if (line, column) > _end(text):
            # Past the end ("Expecting )" at the end of the text): where the token is missing.
            line, column = _end(text)
        return SqlError(ErrorCode.SYNTAX, description, line, column)
    return SqlError(ErrorCode.SYNTAX, description, *position(text, 0))


def _end(text: str) -> tuple[int, int]:
    """The position just after the text's last character that is not blank."""
    return position(text, len(text.rstrip()))


class _ProgramAnalyzer:
    def __init__(
        self,
        text: str,
        shared: Mapping[str, Source] | None = None,
        compatibility: Compatibility = Compatibility.DEFAULT,
    ) -> None:
        self.text = text
        self.compatibility = compatibility
        self.locator = Locator(text)
        self.catalog = Catalog() if not shared else SharedCatalog(dict(shared))

    def fail(self, code: ErrorCode, message: str, node: exp.Expr | None) -> NoReturn:
        line, column = self.locator.of(node)
        raise _Stop(SqlError(code, message, line, column))

    def run(self, statements: list[exp.Expr]) -> Program:
        analyzed: list[AnalyzedStatement] = []
        errors: list[SqlError] = []
        for statement in statements:
            try:
                analyzed.append(self.statement(statement))
            except _Stop as stop:
                errors.append(stop.error)
        if not statements and not errors:
            errors.append(SqlError(ErrorCode.EMPTY_INPUT, "no SQL statement found", 1, 1))
        if errors:
            raise SqlValidationError(errors)
        return Program(self.text, self.catalog, analyzed, self.compatibility)

    # -- statements ------------------------------------------------------------------------

    def statement(self, node: exp.Expr) -> AnalyzedStatement:
        line = self.locator.of(node)[0]
        if isinstance(node, nodes.CreateSource):
            source = source_from_ddl(node, self.fail)
            self._register(source, node)
            return AnalyzedStatement(StatementKind.CREATE_SOURCE, node, line, source.name)
        if isinstance(node, nodes.CreateAs):
            return self._create_as(node, line)
        if isinstance(node, nodes.InsertInto):
            return self._insert_into(node, line)
        if isinstance(node, nodes.DropSource):
            name = node.this.name
            existing = self.catalog.source(name)
            if existing is None and not node.args.get("exists"):
                self.fail(
                    ErrorCode.UNKNOWN_SOURCE,
                    f"{node.args['kind']} {name} does not exist"
                    + suggestion(name, [s.name for s in self.catalog.sources.values()]),
                    node.this,
                )
            self.catalog.drop_source(name)
            return AnalyzedStatement(StatementKind.DROP, node, line, name)
        if isinstance(node, nodes.CreateFunction):
            return self._create_function(node, line)
        if isinstance(node, exp.Select | exp.Union):
            query = _QueryAnalyzer(self, node).analyze()
            return AnalyzedStatement(StatementKind.SELECT, node, line, query=query)
        self.fail(
            ErrorCode.UNSUPPORTED,
            f"unsupported statement: {node.sql()[:60]}",
            node,
        )

    def _register(self, source: Source, node: exp.Expr) -> None:
        if isinstance(self.catalog, SharedCatalog) and self.catalog.override(source):
            return  # the text's own declaration takes precedence over the shared one
        existing = self.catalog.source(source.name)
        if existing is not None and not node.args.get("replace"):
            if node.args.get("exists"):
                return
            self.fail(
                ErrorCode.DUPLICATE_SOURCE,
                f"{existing.kind.value} {existing.name} already exists",
                node.this,
            )
        self.catalog.add_source(source)

    def _create_as(self, node: nodes.CreateAs, line: int) -> AnalyzedStatement:
        query_node = node.args["expression"]
        if not isinstance(query_node, exp.Select):
            self.fail(ErrorCode.UNSUPPORTED, "CREATE ... AS needs a SELECT", query_node)
        query = _QueryAnalyzer(self, query_node).analyze()
        kind = SourceKind(node.args["kind"])
        name = node.this.name
        if kind is SourceKind.TABLE and not query.is_aggregate and not _reads_only_tables(query):
            self.fail(
                ErrorCode.UNSUPPORTED,
                f"TABLE {name} needs GROUP BY (an aggregation); use CREATE STREAM for a "
                "query without one",
                node.this,
            )
        if kind is SourceKind.STREAM and query.is_aggregate and query.window is None:
            self.fail(
                ErrorCode.UNSUPPORTED,
                f"an aggregation without a window produces a TABLE: use CREATE TABLE {name}",
                node.this,
            )
        query.result_kind = kind
        props = property_map(node.args.get("properties") or [], SINK_PROPERTIES, self.fail)
        first = query.relations[0].source
        value_format = first.value_format
        key_format = first.key_format
        if "format" in props:
            value_format = key_format = _format(props["format"], self.fail)
        if "value_format" in props:
            value_format = _format(props["value_format"], self.fail)
        if "key_format" in props:
            key_format = _format(props["key_format"], self.fail)
        partitions = topic_setting(props, "partitions", self.fail)
        replicas = topic_setting(props, "replicas", self.fail)
        if "kafka_topic" in props:
            topic, topic_node = str(props["kafka_topic"][0]), props["kafka_topic"][1]
            check_topic(topic, topic_node, True, self.fail)
        else:
            topic, topic_node = name, node.this
            check_topic(
                topic, topic_node, True, self.fail, f"the sink topic defaults to the name {name}: "
            )
        self._check_not_reading_itself(topic, query, topic_node)
        window_type, window_size_ms = _sink_window(query)
        sink = Source(
            name=name,
            kind=kind,
            columns=tuple(
                Column(col, typ, key=col in query.key_fields) for col, typ in query.output_columns
            ),
            topic=topic,
            value_format=value_format,
            key_format=key_format,
            key_columns=tuple(k for k in query.key_fields),
            timestamp_column=None,
            partitions=partitions if partitions is not None else first.partitions,
            replicas=replicas,
            derived=True,
            window_type=window_type,
            window_size_ms=window_size_ms,
        )
        self._register(sink, node)
        return AnalyzedStatement(StatementKind.CREATE_AS, node, line, name, query=query, sink=sink)

    def _insert_into(self, node: nodes.InsertInto, line: int) -> AnalyzedStatement:
        name = node.this.name
        target = self.catalog.source(name)
        if target is None:
            self.fail(
                ErrorCode.UNKNOWN_SOURCE,
                f"INSERT INTO target {name} does not exist"
                + suggestion(name, [s.name for s in self.catalog.sources.values()]),
                node.this,
            )
        if target.kind is not SourceKind.STREAM:
            self.fail(ErrorCode.UNSUPPORTED, "INSERT INTO needs a STREAM target", node.this)
        query = _QueryAnalyzer(self, node.args["expression"]).analyze()
        self._check_not_reading_itself(target.topic, query, node.this)
        produced = dict((c.lower(), (c, ty)) for c, ty in query.output_columns)
        for column in target.columns:
            found = produced.pop(column.name.lower(), None)
            if found is None:
                self.fail(
                    ErrorCode.UNKNOWN_COLUMN,
                    f"the query does not produce column '{column.name}' of {target.name}",
                    node.args["expression"],
                )
            if t.common_supertype(found[1], column.type) is None:
                self.fail(
                    ErrorCode.TYPE_MISMATCH,
                    f"column '{column.name}' is {column.type} in {target.name} but the query "
                    f"produces {found[1]}",
                    node.args["expression"],
                )
        if produced:
            extra = ", ".join(c for c, _ in produced.values())
            self.fail(
                ErrorCode.UNKNOWN_COLUMN,
                f"{target.name} has no column(s) {extra}",
                node.args["expression"],
            )
        return AnalyzedStatement(
            StatementKind.INSERT_INTO, node, line, name, query=query, sink=target
        )

    def _check_not_reading_itself(self, topic: str, query: AnalyzedQuery, node: exp.Expr) -> None:
        # A query that writes into a topic it reads consumes its own output forever.
        for relation in query.relations:
            if relation.source.topic == topic:
                self.fail(
                    ErrorCode.SINK_IS_SOURCE,
                    f"the query writes to topic '{topic}', which it also reads "
                    f"(through {relation.source.name}): it would consume its own output",
                    node,
                )

    def _create_function(self, node: nodes.CreateFunction, line: int) -> AnalyzedStatement:
        name = node.this.name
        language = str(node.args["language"]).upper()
        if language != "PYTHON":
            offset = node.meta.get(LANGUAGE_OFFSET_META)
            line, column = position(self.text, offset) if isinstance(offset, int) else (1, 1)
            raise _Stop(
                SqlError(
                    ErrorCode.UNSUPPORTED_LANGUAGE,
                    f"LANGUAGE {language} is not supported: write the function in Python "
                    "(LANGUAGE PYTHON AS 'module:callable')",
                    line,
                    column,
                )
            )
        definition = node.args["definition"].name
        if not is_well_formed(definition) and entry_point_value(definition) is None:
            self.fail(
                ErrorCode.INVALID_PROPERTY,
                f"function body '{definition}' must be 'module:callable' or the name of a "
                f"'{ENTRY_POINT_GROUP}' entry point",
                node.args["definition"],
            )
        code_problem = definition_problem(definition)
        if code_problem is not None:
            self.fail(ErrorCode.UDF_CODE_NOT_ALLOWED, code_problem, node.args["definition"])
        parameters: list[Column] = []
        for param in node.args.get("params") or []:
            try:
                parameters.append(Column(param.name, sql_type(param.args["kind"])))
            except UnsupportedType as unsupported:
                self.fail(ErrorCode.UNSUPPORTED, f"unsupported type {unsupported}", param)
        try:
            returns = sql_type(node.args["returns"])
        except UnsupportedType as unsupported:
            self.fail(ErrorCode.UNSUPPORTED, f"unsupported type {unsupported}", node)
        line, column = self.locator.of(node.args["definition"])
        self.catalog.add_function(
            Function(name, tuple(parameters), returns, definition, line, column)
        )
        return AnalyzedStatement(StatementKind.CREATE_FUNCTION, node, line, name)


def _format(value: tuple[object, exp.Expr], fail: Fail) -> Format:
    raw, node = value
    try:
        return Format(str(raw).upper())
    except ValueError:
        fail(
            ErrorCode.INVALID_PROPERTY,
            f"format '{raw}' is not one of JSON, AVRO, DELIMITED, KAFKA",
            node,
        )


def _reads_only_tables(query: AnalyzedQuery) -> bool:
    return all(r.kind is SourceKind.TABLE for r in query.relations)


@dataclass
class _WindowRef:
    """The window of an aggregate query, with the syntax it came from."""

    spec: WindowSpec
    node: exp.Expr


_NUMBERED_NAME = re.compile(r"(.*?)(?:_(\d+))?", re.DOTALL)


class _KsqldbNames:
    """ksqlDB's names for unaliased SELECT expressions (its `ColumnNames` alias generator):
    `KSQL_COL_0`, `KSQL_COL_1`, ... in SELECT order, skipping any number a source column
    already uses (`KSQL_COL_3` in a source); a struct field access `s->f` is named after the
    field (`F`, then `F_1`, ...). Column references keep their own name."""

    def __init__(self, source_columns: list[str]) -> None:
        self.used: dict[str, set[int]] = {}
        for column in source_columns:
            stem, number = self._split(column)
            self.used.setdefault(stem, set()).add(number)
        self.next: dict[str, int] = {}

    @staticmethod
    def _split(name: str) -> tuple[str, int]:
        match = _NUMBERED_NAME.fullmatch(name)
        assert match is not None  # the pattern matches any text
        return match.group(1), int(match.group(2)) if match.group(2) else 0

    def _next(self, stem: str, drop_zero: bool) -> str:
        used = self.used.get(stem, set())
        number = self.next.get(stem, 0)
        while number in used:
            number += 1
        self.next[stem] = number + 1
        return stem if number == 0 and drop_zero else f"{stem}_{number}"

    def name_for(self, node: exp.Expr) -> str:
        if isinstance(node, nodes.FieldAccess):
            field = node.expression
            text = field.name if isinstance(field, exp.Expr) else str(field)
            return self._next(self._split(text)[0], drop_zero=True)
        return self._next("KSQL_COL", drop_zero=False)


def _sink_window(query: AnalyzedQuery) -> tuple[str | None, int | None]:
    """A sink's windowed-key declaration: a windowed aggregation writes windowed keys, and so
    does a query that keeps a windowed source's keys (no aggregation, no PARTITION BY), so
    queries reading the sink see WINDOWSTART/WINDOWEND."""
    window = query.window
    if window is not None:
        size = None if window.kind is WindowKind.SESSION else window.size_ms
        return window.kind.value, size
    first = query.relations[0].source
    if first.window_type is not None and not query.is_aggregate and not query.partition_by:
        return first.window_type, first.window_size_ms
    return None, None


class _QueryAnalyzer:
    def _retractable(
        self, aggregates: list[tuple[str, bound.AggregateCall]], select: exp.Expr
    ) -> None:
        """Aggregating a TABLE retracts a row's previous value when it changes: aggregates
        of the input offset cannot say which of two equal values to take back (ksqlDB
        refuses them on a table as well)."""
        for _, call in aggregates:
            if call.function in ("EARLIEST_BY_OFFSET", "LATEST_BY_OFFSET"):
                source = self.relations[0].source.name
                node = next(
                    (n for n in select.find_all(exp.Anonymous) if n.name.upper() == call.function),
                    select,
                )
                self.fail(
                    ErrorCode.UNSUPPORTED,
                    f"{call.function} cannot aggregate TABLE {source}: a table row that "
                    "changes retracts its previous value, and an offset-based aggregate "
                    "cannot be retracted; aggregate the stream the table is built from",
                    node,
                )

    def __init__(self, program: _ProgramAnalyzer, node: exp.Expr) -> None:
        self.program = program
        self.fail = program.fail
        self.catalog = program.catalog
        self.node = node
        self.binder = Binder(
            self.catalog, program.fail, program.compatibility is Compatibility.KSQLDB
        )
        self.relations: list[Relation] = []
        self.query: AnalyzedQuery

    # -- entry -----------------------------------------------------------------------------

    def analyze(self) -> AnalyzedQuery:
        select = self.node
        if isinstance(select, exp.Union):
            self.fail(ErrorCode.UNSUPPORTED, "UNION is not supported yet", select)
        if not isinstance(select, exp.Select):
            self.fail(ErrorCode.UNSUPPORTED, "expected a SELECT", select)
        for unsupported in ("with", "order", "limit", "offset"):
            part = select.args.get(unsupported)
            if part:
                what = {"with": "WITH (common table expressions)"}.get(
                    unsupported, unsupported.upper()
                )
                self.fail(
                    ErrorCode.UNSUPPORTED,
                    f"{what} is not supported in a streaming query",
                    part,
                )
        self._relations(select)
        windowed = [r for r in self.relations if r.source.window_type is not None]
        if windowed and len(self.relations) > 1:
            self.fail(
                ErrorCode.UNSUPPORTED,
                f"joining the windowed source {windowed[0].source.name} is not supported yet",
                (select.args.get("joins") or [select])[0],
            )
        self.query = AnalyzedQuery(node=select, relations=self.relations)
        self._joins(select)
        match = select.args.get("match")
        if match is not None:
            self._match_recognize(match)
        window = self._window(select)
        aggregate_query = bool(
            window
            or select.args.get("group")
            or any(contains_aggregate(e) for e in select.expressions)
            or select.args.get("having")
        )
        if select.args.get("having") and not select.args.get("group") and window is None:
            self.fail(
                ErrorCode.HAVING_WITHOUT_GROUP_BY,
                "HAVING needs a GROUP BY",
                select.args["having"],
            )
        over_items = self._over(select)
        self._where(select, over_items)
        if aggregate_query:
            if over_items:
                self.fail(
                    ErrorCode.UNSUPPORTED,
                    "OVER (...) cannot be combined with GROUP BY in one query",
                    select,
                )
            self._aggregate(select, window)
        else:
            self._projection(select, over_items)
        self.query.distinct = bool(select.args.get("distinct"))
        self._partition_by(select)
        if self.program.compatibility is Compatibility.KSQLDB:
            self._keys_projected(select)
        self._emit(select, window)
        self._check_output_names()
        return self.query

    def _keys_projected(self, select: exp.Select) -> None:
        """ksqlDB's rule: a GROUP BY or PARTITION BY key must be in the projection ("Key
        missing from projection"), where it names the key and stays out of the value."""
        if self.query.partition_by:
            selected = {expr for _, expr in self.query.select}
            missing = [expr for _, expr in self.query.partition_by if expr not in selected]
            what, clause = "partitioning", select.args.get("partition_by")
        else:
            references = {e.name for _, e in self.query.select if isinstance(e, bound.ColumnRef)}
            missing = [expr for name, expr in self.query.group_keys if name not in references]
            what, clause = "grouping", select.args.get("group")
        if missing and clause is not None:
            shown = ", ".join(e.render() for e in missing)
            self.fail(
                ErrorCode.NON_GROUPED_COLUMN,
                f"key missing from projection: under ksqlDB's rules the query must include the "
                f"{what} expression {shown} in its SELECT list (it may be aliased)",
                clause,
            )

    # -- FROM and JOIN ---------------------------------------------------------------------

    def _relations(self, select: exp.Select) -> None:
        from_ = select.args.get("from_")
        if from_ is None:
            self.fail(ErrorCode.UNSUPPORTED, "a streaming query needs FROM", select)
        items = [from_.this] + [join.this for join in select.args.get("joins") or []]
        for item in items:
            self.relations.append(self._relation(item))
        aliases: set[str] = set()
        for relation, item in zip(self.relations, items, strict=True):
            if relation.alias.lower() in aliases:
                self.fail(
                    ErrorCode.DUPLICATE_ALIAS,
                    f"'{relation.alias}' is used twice in FROM; give each source its own alias",
                    item.args.get("alias") or item,
                )
            aliases.add(relation.alias.lower())
        qualified = len(self.relations) > 1
        for relation in self.relations:
            relation.fields = [
                RelationField(
                    c.column, f"{relation.alias}.{c.column}" if qualified else c.column, c.type
                )
                for c in relation.fields
            ]

    def _relation(self, item: exp.Expr) -> Relation:
        if isinstance(item, nodes.WindowTableFunction):
            inner = item.this
            relation = self._relation(inner)
            alias = item.args.get("alias")
            if alias is not None and alias.name:
                relation.alias = alias.name
            time_node = item.args["time_column"]
            time_field = relation.find(time_node.name)
            if time_field is None:
                self._unknown_column(time_node, [relation])
            self._check_time_type(time_field.type, time_node)
            kind = _WINDOW_KINDS[str(item.args["kind"]).upper()]
            relation.window = self._window_spec(
                kind, WindowSyntax.FLINK_TVF, time_field.column, item
            )
            relation.fields += [
                RelationField("window_start", "window_start", t.TIMESTAMP),
                RelationField("window_end", "window_end", t.TIMESTAMP),
            ]
            if relation.kind is SourceKind.TABLE:
                self.fail(
                    ErrorCode.WINDOW_OVER_TABLE,
                    f"cannot window TABLE {relation.source.name}: windows need a STREAM",
                    item,
                )
            return relation
        if isinstance(item, exp.Subquery | exp.Select):
            self.fail(
                ErrorCode.UNSUPPORTED,
                "subqueries in FROM are not supported; create an intermediate stream",
                item,
            )
        if not isinstance(item, exp.Table):
            self.fail(ErrorCode.UNSUPPORTED, f"unsupported FROM item {item.sql()}", item)
        name = item.name
        source = self.catalog.source(name)
        if source is None:
            known = [s.name for s in self.catalog.sources.values()]
            self.fail(
                ErrorCode.UNKNOWN_SOURCE,
                f"unknown stream or table '{name}'{suggestion(name, known)}",
                item,
            )
        alias = item.alias or source.name
        fields = [RelationField(c.name, c.name, c.type) for c in source.columns]
        # ROWTIME is epoch milliseconds either way; ksqlDB types it BIGINT (`ROWTIME > 100`).
        ksqldb = self.program.compatibility is Compatibility.KSQLDB
        fields.append(RelationField(ROWTIME, ROWTIME, t.BIGINT if ksqldb else t.TIMESTAMP))
        if source.window_type is not None:
            # A windowed source's bounds come from its keys (ksqlDB: BIGINT epoch ms).
            taken = {c.name.upper() for c in source.columns}
            fields += [
                RelationField(name, name, t.BIGINT)
                for name in SOURCE_WINDOW_BOUNDS
                if name not in taken
            ]
        return Relation(alias, source, fields)

    def _check_time_type(self, sql_type: t.SqlType, node: exp.Expr) -> None:
        if sql_type.kind not in (TypeKind.TIMESTAMP, TypeKind.BIGINT):
            self.fail(
                ErrorCode.TYPE_MISMATCH,
                f"window time column must be TIMESTAMP or BIGINT (epoch ms), not {sql_type}",
                node,
            )

    def _window_spec(
        self, kind: WindowKind, syntax: WindowSyntax, time_column: str | None, node: exp.Expr
    ) -> WindowSpec:
        def ms(arg: str) -> int | None:
            value = node.args.get(arg)
            if value is None:
                return None
            return interval_ms(value, self.fail, allow_zero=arg == "grace")

        size, slide, gap = ms("size"), ms("slide"), ms("gap")
        if isinstance(node, nodes.KsqlWindow):
            slide = ms("advance")
        grace = ms("grace") if isinstance(node, nodes.KsqlWindow) else None
        retention = ms("retention") if isinstance(node, nodes.KsqlWindow) else None
        if kind is WindowKind.SESSION:
            if gap is None:
                self.fail(ErrorCode.SYNTAX, "a SESSION window needs an inactivity gap", node)
        elif size is None:
            self.fail(ErrorCode.SYNTAX, f"a {kind.value} window needs a size", node)
        if kind is WindowKind.HOPPING:
            if slide is None:
                self.fail(ErrorCode.SYNTAX, "a HOPPING window needs a slide (ADVANCE BY)", node)
            assert size is not None
            if slide > size:
                self.fail(
                    ErrorCode.INVALID_LITERAL,
                    "a hopping window's slide must not exceed its size",
                    node,
                )
        else:
            slide = None
        return WindowSpec(kind, syntax, time_column, size, slide, gap, grace, retention)

    def _resolve(self, node: exp.Column, relations: list[Relation] | None = None) -> bound.Expr:
        """Resolve a column reference (maybe alias-qualified, maybe a struct path)."""
        scope = self.relations if relations is None else relations
        parts = [p.name for p in node.parts]
        if len(parts) >= 2:
            qualifier = next((r for r in scope if r.alias.lower() == parts[0].lower()), None)
            if qualifier is not None:
                column = qualifier.find(parts[1])
                if column is None:
                    self._unknown_column(node, [qualifier], name=parts[1])
                expr: bound.Expr = bound.ColumnRef(column.type, column.field)
                for field in parts[2:]:
                    expr = self.binder._field(expr, field, node)
                return expr
        matches = [(r, f) for r in scope if (f := r.find(parts[0])) is not None]
        if not matches:
            if len(parts) >= 2 and not any(r.alias.lower() == parts[0].lower() for r in scope):
                known = [r.alias for r in scope]
                if all(r.find(parts[0]) is None for r in scope):
                    self.fail(
                        ErrorCode.UNKNOWN_SOURCE,
                        f"unknown stream, table or alias '{parts[0]}'{suggestion(parts[0], known)}",
                        node,
                    )
            self._unknown_column(node, scope, name=parts[0])
        if len(matches) > 1:
            owners = ", ".join(r.alias for r, _ in matches)
            self.fail(
                ErrorCode.AMBIGUOUS_COLUMN,
                f"column '{parts[0]}' is ambiguous (in {owners}); qualify it",
                node,
            )
        _, column = matches[0]
        expr = bound.ColumnRef(column.type, column.field)
        for field in parts[1:]:
            expr = self.binder._field(expr, field, node)
        return expr

    def _unknown_column(
        self, node: exp.Expr, scope: list[Relation], name: str | None = None
    ) -> NoReturn:
        name = name or node.name
        candidates = [f.column for r in scope for f in r.fields if f.column != ROWTIME]
        where = scope[0].source.name if len(scope) == 1 else "the FROM clause"
        self.fail(
            ErrorCode.UNKNOWN_COLUMN,
            f"unknown column '{name}' in {where}{suggestion(name, candidates)}",
            node,
        )

    def _row(self, node: exp.Expr, context: str, scope: list[Relation] | None = None) -> bound.Expr:
        return self.binder.bind(node, lambda c: self._resolve(c, scope), context=context)

    def _joins(self, select: exp.Select) -> None:
        joins = select.args.get("joins") or []
        left_kind = self.relations[0].kind
        for index, join in enumerate(joins, start=1):
            right = self.relations[index]
            side = str(join.args.get("side") or "").upper()
            join_kind_word = str(join.args.get("kind") or "").upper()
            if join_kind_word in ("CROSS", "SEMI", "ANTI") or join.args.get("on") is None:
                self.fail(
                    ErrorCode.JOIN_WITHOUT_KEY_EQUALITY,
                    "a streaming join needs ON with an equality between the two sides",
                    join,
                )
            kind = _JOIN_KINDS.get(side, JoinKind.INNER)
            left_scope = self.relations[:index]
            condition = self._row(join.args["on"], "ON")
            self.binder.require_boolean(condition, join.args["on"], "ON")
            left_keys, right_keys, residual = self._split_on(join.args["on"], left_scope, right)
            within = join.args.get("within")
            before = after = grace = None
            if right.kind is SourceKind.STREAM and left_kind is SourceKind.STREAM:
                if within is None:
                    self.fail(
                        ErrorCode.JOIN_WITHOUT_WITHIN,
                        f"a stream-stream join needs WITHIN (for example WITHIN INTERVAL '1' "
                        f"HOUR) to bound the state it keeps; {right.source.name} is a STREAM",
                        join.this,
                    )
                if within.this is not None:
                    before = after = interval_ms(within.this, self.fail)
                else:
                    before = interval_ms(within.args["before"], self.fail)
                    after = interval_ms(within.args["after"], self.fail)
                if within.args.get("grace") is not None:
                    grace = interval_ms(within.args["grace"], self.fail, allow_zero=True)
            else:
                if within is not None:
                    self.fail(
                        ErrorCode.UNSUPPORTED,
                        "WITHIN only applies to stream-stream joins",
                        within,
                    )
                if left_kind is SourceKind.TABLE and right.kind is SourceKind.STREAM:
                    self.fail(
                        ErrorCode.UNSUPPORTED,
                        "a table-stream join must put the STREAM first (FROM stream JOIN table)",
                        join.this,
                    )
                if left_kind is SourceKind.STREAM and kind in (JoinKind.RIGHT, JoinKind.FULL):
                    self.fail(
                        ErrorCode.UNSUPPORTED,
                        f"{kind.value} JOIN of a stream with a table is not supported; "
                        "use INNER or LEFT",
                        join,
                    )
                self._check_table_key(right, right_keys, join.args["on"])
            self.query.joins.append(
                JoinStep(
                    right=index,
                    kind=kind,
                    left_keys=tuple(left_keys),
                    right_keys=tuple(right_keys),
                    residual=residual,
                    left_kind=left_kind,
                    within_before_ms=before,
                    within_after_ms=after,
                    grace_ms=grace,
                )
            )
            if right.kind is SourceKind.STREAM:
                left_kind = SourceKind.STREAM

    def _split_on(
        self, on: exp.Expr, left_scope: list[Relation], right: Relation
    ) -> tuple[list[bound.Expr], list[bound.Expr], bound.Expr | None]:
        left_keys: list[bound.Expr] = []
        right_keys: list[bound.Expr] = []
        residual: list[bound.Expr] = []
        for conjunct in _conjuncts(on):
            if isinstance(conjunct, exp.EQ):
                sides = [self._side(conjunct.this, left_scope, right),
                         self._side(conjunct.expression, left_scope, right)]  # fmt: skip
                if sides == ["left", "right"] or sides == ["right", "left"]:
                    left_node, right_node = (
                        (conjunct.this, conjunct.expression)
                        if sides[0] == "left"
                        else (conjunct.expression, conjunct.this)
                    )
                    left_keys.append(self._row(left_node, "ON", left_scope))
                    right_keys.append(self._row(right_node, "ON", [right]))
                    continue
            residual.append(self._row(conjunct, "ON"))
        if not left_keys:
            self.fail(
                ErrorCode.JOIN_WITHOUT_KEY_EQUALITY,
                f"the join with {right.alias} needs an equality between a column of each side "
                "(ON left.key = right.key)",
                on,
            )
        combined: bound.Expr | None = None
        for part in residual:
            combined = part if combined is None else bound.Call(t.BOOLEAN, "AND", (combined, part))
        return left_keys, right_keys, combined

    def _side(self, node: exp.Expr, left_scope: list[Relation], right: Relation) -> str | None:
        columns = list(node.find_all(exp.Column))
        if not columns:
            return None
        owners = set()
        for column in columns:
            parts = [p.name.lower() for p in column.parts]
            owner = None
            if len(parts) >= 2:
                owner = next((r for r in [*left_scope, right] if r.alias.lower() == parts[0]), None)
            if owner is None:
                owner = next((r for r in [*left_scope, right] if r.find(parts[0])), None)
            if owner is None:
                return None
            owners.add("right" if owner is right else "left")
        return owners.pop() if len(owners) == 1 else None

    def _check_table_key(self, table: Relation, right_keys: list[bound.Expr], on: exp.Expr) -> None:
        if table.kind is not SourceKind.TABLE:
            return
        key_fields = [
            next(f.field for f in table.fields if f.column == k) for k in table.source.key_columns
        ]
        used = [k.name for k in right_keys if isinstance(k, bound.ColumnRef)]
        if sorted(used) != sorted(key_fields) or len(used) != len(right_keys):
            keys = ", ".join(table.source.key_columns)
            self.fail(
                ErrorCode.JOIN_WITHOUT_KEY_EQUALITY,
                f"a join with TABLE {table.source.name} must match its PRIMARY KEY ({keys})",
                on,
            )

    # -- windows ---------------------------------------------------------------------------

    def _window(self, select: exp.Select) -> _WindowRef | None:
        found: list[_WindowRef] = []
        group = select.args.get("group")
        for item in group.expressions if group else []:
            if isinstance(item, nodes.GroupWindow):
                time_node = item.this
                time_expr = self._row(time_node, "GROUP BY")
                if not isinstance(time_expr, bound.ColumnRef):
                    self.fail(ErrorCode.UNSUPPORTED, "window time must be a column", time_node)
                self._check_time_type(time_expr.type, time_node)
                kind = _WINDOW_KINDS[str(item.args["kind"]).upper()]
                spec = self._window_spec(kind, WindowSyntax.FLINK_GROUP, time_expr.name, item)
                found.append(_WindowRef(spec, item))
        ksql = select.args.get("ksql_window")
        if ksql is not None:
            first = self.relations[0]
            kind = _WINDOW_KINDS[str(ksql.args["kind"]).upper()]
            time_column = first.source.timestamp_column
            time_field = first.find(time_column).field if time_column else None  # type: ignore[union-attr]
            found.append(
                _WindowRef(self._window_spec(kind, WindowSyntax.KSQL, time_field, ksql), ksql)
            )
        for relation in self.relations:
            if relation.window is not None:
                found.append(_WindowRef(relation.window, select.args["from_"]))
        if len(found) > 1:
            self.fail(ErrorCode.MULTIPLE_WINDOWS, "a query can have only one window", found[1].node)
        if not found:
            return None
        window = found[0]
        for relation in self.relations:
            if relation.kind is SourceKind.TABLE:
                self.fail(
                    ErrorCode.WINDOW_OVER_TABLE,
                    f"windowed aggregation over TABLE {relation.source.name} is not possible: "
                    "windows need a STREAM",
                    window.node,
                )
        if window.spec.syntax is WindowSyntax.FLINK_TVF and not select.args.get("group"):
            self.fail(
                ErrorCode.WINDOW_OUTSIDE_GROUP_BY,
                "a window table function needs GROUP BY window_start, window_end",
                window.node,
            )
        self.query.window = window.spec
        return window

    def _window_bound(self, node: exp.Expr) -> bound.Expr | None:
        """window_start/window_end (TVF), WINDOWSTART/WINDOWEND (ksqlDB), TUMBLE_START(..)."""
        window = self.query.window
        if window is None:
            return None
        if isinstance(node, nodes.GroupWindowBound):
            kind = _WINDOW_KINDS[str(node.args["kind"]).upper()]
            matches = window.syntax is WindowSyntax.FLINK_GROUP and kind is window.kind
            if matches:
                try:
                    spec = self._window_spec(
                        kind, WindowSyntax.FLINK_GROUP, window.time_field, node
                    )
                except _Stop:  # a malformed bound is reported just below
                    matches = False
                else:
                    matches = (spec.size_ms, spec.slide_ms, spec.gap_ms) == (
                        window.size_ms,
                        window.slide_ms,
                        window.gap_ms,
                    )
            if not matches:
                self.fail(
                    ErrorCode.WINDOW_OUTSIDE_GROUP_BY,
                    f"{node.args['kind']}_{node.args['bound']}(...) must repeat the window of "
                    "GROUP BY exactly",
                    node,
                )
            name = "window_start" if str(node.args["bound"]).upper() == "START" else "window_end"
            return bound.ColumnRef(t.TIMESTAMP, name)
        if isinstance(node, exp.Column) and len(node.parts) == 1:
            name = node.name.lower()
            if window.syntax is WindowSyntax.KSQL and name in ("windowstart", "windowend"):
                return bound.ColumnRef(
                    t.TIMESTAMP, "window_start" if name == "windowstart" else "window_end"
                )
            if window.syntax is WindowSyntax.FLINK_TVF and name in ("window_start", "window_end"):
                return bound.ColumnRef(t.TIMESTAMP, name)
        return None

    # -- WHERE, OVER -----------------------------------------------------------------------

    def _over(self, select: exp.Select) -> dict[str, exp.Window]:
        """Select items computed by OVER (...) windows, by output name."""
        items: dict[str, exp.Window] = {}
        for item in select.expressions:
            windows = list(item.find_all(exp.Window))
            if windows:
                items[item.alias_or_name] = windows[0]
        return items

    def _where(self, select: exp.Select, over_items: dict[str, exp.Window]) -> None:
        where = select.args.get("where")
        if where is None:
            return
        condition = where.this
        for aggregate in condition.find_all(exp.AggFunc):
            if not isinstance(aggregate.parent, exp.Window):
                self.fail(
                    ErrorCode.AGGREGATE_IN_WHERE,
                    f"aggregate function {call_parts(aggregate)[0]} is not allowed in WHERE; "
                    "use HAVING",
                    aggregate,
                )
        pre: list[bound.Expr] = []
        self._post_conjuncts: list[exp.Expr] = []
        for conjunct in _conjuncts(condition):
            refers_to_over = any(
                len(c.parts) == 1
                and c.name in over_items
                and all(r.find(c.name) is None for r in self.relations)
                for c in conjunct.find_all(exp.Column)
            )
            if refers_to_over:
                self._post_conjuncts.append(conjunct)
            else:
                bound_conjunct = self._row(conjunct, "WHERE")
                self.binder.require_boolean(bound_conjunct, conjunct, "WHERE")
                pre.append(bound_conjunct)
        self.query.where = _and_all(pre)

    # -- projections -----------------------------------------------------------------------

    def _expand(self, select: exp.Select) -> list[tuple[str, exp.Expr, bound.Expr | None]]:
        """Select items as (output name, node, pre-bound expr for * expansions)."""
        items: list[tuple[str, exp.Expr, bound.Expr | None]] = []
        ksqldb_names = self._ksqldb_names()
        for index, item in enumerate(select.expressions, 1):
            star_of = None
            if isinstance(item, exp.Star):
                star_of = self.relations
            elif isinstance(item, exp.Column) and isinstance(item.this, exp.Star):
                alias = item.table
                owner = next((r for r in self.relations if r.alias.lower() == alias.lower()), None)
                if owner is None:
                    known = [r.alias for r in self.relations]
                    self.fail(
                        ErrorCode.UNKNOWN_SOURCE,
                        f"unknown alias '{alias}'{suggestion(alias, known)}",
                        item,
                    )
                star_of = [owner]
            if star_of is not None:
                if self.query.match is not None:
                    for name, expr in zip(
                        self._match_output_names, self._match_output_exprs, strict=True
                    ):
                        items.append((name, item, expr))
                    continue
                taken = {name.lower() for name, _, _ in items}
                for relation in star_of:
                    for column in relation.fields:
                        if column.column in (ROWTIME, "window_start", "window_end") and (
                            column.column == ROWTIME or relation.window is None
                        ):
                            continue
                        if column.field in SOURCE_WINDOW_BOUNDS:
                            continue  # like ksqlDB: the window bounds stay in the key
                        name = column.column
                        if name.lower() in taken:
                            name = f"{relation.alias}_{column.column}"
                        taken.add(name.lower())
                        items.append((name, item, bound.ColumnRef(column.type, column.field)))
                continue
            name = item.alias_or_name if item.alias_or_name else f"column_{index}"
            if isinstance(item, exp.Alias):
                name = item.alias
            elif not isinstance(item, exp.Column):
                name = item.alias_or_name if isinstance(item, exp.Alias) else f"column_{index}"
                if ksqldb_names is not None:
                    name = ksqldb_names.name_for(item)
            items.append((name, item.this if isinstance(item, exp.Alias) else item, None))
        return items

    def _ksqldb_names(self) -> _KsqldbNames | None:
        if self.program.compatibility is not Compatibility.KSQLDB:
            return None
        return _KsqldbNames([f.column for r in self.relations for f in r.fields])

    def _projection(self, select: exp.Select, over_items: dict[str, exp.Window]) -> None:
        over_fields: dict[int, str] = {}
        aggregates: list[tuple[str, bound.AggregateCall]] = []
        spec: tuple[tuple[bound.Expr, ...], str | None, str, int] | None = None

        def intercept(node: exp.Expr) -> bound.Expr | None:
            nonlocal spec
            if not isinstance(node, exp.Window):
                return None
            key = id(node)
            if key in over_fields:
                return bound.ColumnRef(
                    aggregates[int(over_fields[key][3:])][1].type, over_fields[key]
                )
            function = node.this
            if not is_aggregate_call(function):
                self.fail(
                    ErrorCode.UNSUPPORTED,
                    "only aggregate functions can be used with OVER (...)",
                    function,
                )
            call = self.binder.aggregate(function, lambda n: self._row(n, "OVER"))
            this_spec = self._over_spec(node)
            if spec is not None and this_spec != spec:
                self.fail(
                    ErrorCode.UNSUPPORTED,
                    "every OVER (...) in a query must use the same PARTITION BY, ORDER BY and "
                    "frame",
                    node,
                )
            spec = this_spec
            name = f"_o_{len(aggregates)}"
            over_fields[key] = name
            aggregates.append((name, call))
            return bound.ColumnRef(call.type, name)

        expressions: list[tuple[str, bound.Expr]] = []
        for name, node, prebound in self._expand(select):
            if prebound is not None:
                expressions.append((name, prebound))
                continue
            if self.query.match is not None:
                expressions.append((name, self._match_output(node)))
                continue
            expressions.append(
                (name, self.binder.bind(node, self._resolve, intercept, context="SELECT"))
            )
        if aggregates:
            assert spec is not None
            partition, order_field, frame, frame_size = spec
            self.query.over = OverSpec(partition, order_field, frame, frame_size, tuple(aggregates))
        self.query.select = expressions
        post = getattr(self, "_post_conjuncts", [])
        if post:
            aliases = {name.lower(): expr for name, expr in expressions}

            def resolve_alias(column: exp.Column) -> bound.Expr:
                if (
                    len(column.parts) == 1
                    and column.name.lower() in aliases
                    and all(r.find(column.name) is None for r in self.relations)
                ):
                    return aliases[column.name.lower()]
                return self._resolve(column)

            conditions = []
            for conjunct in post:
                condition = self.binder.bind(conjunct, resolve_alias, context="WHERE")
                self.binder.require_boolean(condition, conjunct, "WHERE")
                conditions.append(condition)
            self.query.post_where = _and_all(conditions)
        self.query.key_fields = tuple(
            name
            for name, expr in expressions
            if isinstance(expr, bound.ColumnRef)
            and any(
                f.field == expr.name and f.column in r.source.key_columns
                for r in self.relations[:1]
                for f in r.fields
            )
        )

    def _over_spec(self, node: exp.Window) -> tuple[tuple[bound.Expr, ...], str | None, str, int]:
        partition = tuple(self._row(p, "PARTITION BY") for p in node.args.get("partition_by") or [])
        order = node.args.get("order")
        if order is None or len(order.expressions) != 1:
            self.fail(ErrorCode.UNSUPPORTED, "OVER (...) needs ORDER BY the event time", node)
        order_expr = self._row(order.expressions[0].this, "ORDER BY")
        time_field = self._event_time_field(order_expr, order.expressions[0])
        frame = node.args.get("spec")
        if frame is None:
            self.fail(
                ErrorCode.UNSUPPORTED,
                "OVER (...) needs a bounded frame: RANGE INTERVAL '1' HOUR PRECEDING or "
                "ROWS BETWEEN 10 PRECEDING AND CURRENT ROW",
                node,
            )
        kind = str(frame.args.get("kind") or "").upper()
        start = frame.args.get("start")
        end = frame.args.get("end")
        end_text = end.name.upper() if isinstance(end, exp.Expr) else str(end or "").upper()
        if end is not None and end_text != "CURRENT ROW":
            self.fail(ErrorCode.UNSUPPORTED, "the frame must end at CURRENT ROW", frame)
        if str(frame.args.get("start_side") or "").upper() != "PRECEDING" or (
            isinstance(start, str) and start.upper() == "UNBOUNDED"
        ):
            self.fail(
                ErrorCode.UNSUPPORTED,
                "the frame must start a bounded distance PRECEDING (unbounded state is not "
                "supported)",
                frame,
            )
        if kind == "RANGE":
            if not isinstance(start, exp.Interval):
                self.fail(ErrorCode.UNSUPPORTED, "RANGE frames need an INTERVAL", frame)
            size = interval_ms(start, self.fail)
        elif kind == "ROWS":
            rows = small_int(start.name) if isinstance(start, exp.Literal) else None
            if rows is None:
                self.fail(ErrorCode.UNSUPPORTED, "ROWS frames need a row count", frame)
            size = rows
        else:
            self.fail(ErrorCode.UNSUPPORTED, f"unsupported frame {kind}", frame)
        return partition, time_field, kind, size

    def _event_time_field(self, expr: bound.Expr, node: exp.Expr) -> str | None:
        if not isinstance(expr, bound.ColumnRef) or expr.type.kind not in (
            TypeKind.TIMESTAMP,
            TypeKind.BIGINT,
        ):
            self.fail(
                ErrorCode.UNSUPPORTED,
                "ORDER BY must be the event-time column (TIMESTAMP or BIGINT)",
                node,
            )
        return None if expr.name.endswith(ROWTIME) else expr.name

    # -- GROUP BY --------------------------------------------------------------------------

    def _aggregate(self, select: exp.Select, window: _WindowRef | None) -> None:
        group = select.args.get("group")
        keys: list[tuple[str, bound.Expr]] = []
        for item in group.expressions if group else []:
            if isinstance(item, nodes.GroupWindow):
                continue
            if self._window_bound(item) is not None:
                continue  # window_start / window_end of a window TVF
            if contains_aggregate(item):
                self.fail(
                    ErrorCode.AGGREGATE_IN_WHERE,
                    "aggregate functions are not allowed in GROUP BY",
                    item,
                )
            expr = self._row(item, "GROUP BY")
            if any(expr == existing for _, existing in keys):
                continue
            keys.append((f"_g_{len(keys)}", expr))
        if window is not None and window.spec.syntax is WindowSyntax.FLINK_TVF:
            named = {
                c.name.lower()
                for c in (group.expressions if group else [])
                if isinstance(c, exp.Column)
            }
            if not {"window_start", "window_end"} <= named:
                self.fail(
                    ErrorCode.WINDOW_OUTSIDE_GROUP_BY,
                    "GROUP BY of a window table function must include window_start and window_end",
                    group,
                )
        if len(self.relations) > 1:
            for relation in self.relations:
                if relation.kind is SourceKind.TABLE:
                    self.fail(
                        ErrorCode.UNSUPPORTED,
                        f"aggregating a join with TABLE {relation.source.name} is not "
                        "supported yet; aggregate one TABLE, or join the aggregated result",
                        select,
                    )
        self.query.group_keys = keys
        aggregates: list[tuple[str, bound.AggregateCall]] = []

        def intercept(node: exp.Expr) -> bound.Expr | None:
            window_bound = self._window_bound(node)
            if window_bound is not None:
                return window_bound
            if is_aggregate_call(node) and isinstance(node, exp.Func):
                call = self.binder.aggregate(node, lambda n: self._row(n, "an aggregate"))
                for name, existing in aggregates:
                    if existing == call:
                        return bound.ColumnRef(call.type, name)
                name = f"_a_{len(aggregates)}"
                aggregates.append((name, call))
                return bound.ColumnRef(call.type, name)
            if isinstance(node, exp.Window):
                self.fail(
                    ErrorCode.UNSUPPORTED,
                    "OVER (...) cannot be combined with GROUP BY",
                    node,
                )
            if not contains_aggregate(node) and not isinstance(
                node, exp.Literal | exp.Boolean | exp.Null | exp.Interval
            ):
                try:
                    as_row = self._row(node, "SELECT")
                except _Stop:
                    if isinstance(node, exp.Column):
                        raise
                    return None
                for name, key in keys:
                    if key == as_row:
                        return bound.ColumnRef(key.type, name)
                if isinstance(node, exp.Column):
                    self.fail(
                        ErrorCode.NON_GROUPED_COLUMN,
                        f"column '{node.sql()}' must appear in GROUP BY or be used in an "
                        "aggregate function",
                        node,
                    )
            return None

        def forbid_columns(column: exp.Column) -> bound.Expr:
            self.fail(
                ErrorCode.NON_GROUPED_COLUMN,
                f"column '{column.sql()}' must appear in GROUP BY or be used in an aggregate "
                "function",
                column,
            )

        expressions: list[tuple[str, bound.Expr]] = []
        for name, node, prebound in self._expand(select):
            if prebound is not None:
                self.fail(
                    ErrorCode.NON_GROUPED_COLUMN,
                    "SELECT * cannot be used with GROUP BY; list the grouped columns",
                    node,
                )
            expressions.append(
                (name, self.binder.bind(node, forbid_columns, intercept, context="SELECT"))
            )
        having = select.args.get("having")
        if having is not None:
            condition = self.binder.bind(having.this, forbid_columns, intercept, "HAVING")
            self.binder.require_boolean(condition, having.this, "HAVING")
            self.query.having = condition
        self.query.aggregates = aggregates
        self.query.select = expressions
        if self.relations and self.relations[0].kind is SourceKind.TABLE:
            self._retractable(aggregates, select)
        key_names = {name for name, _ in keys}
        self.query.key_fields = tuple(
            name
            for name, expr in expressions
            if isinstance(expr, bound.ColumnRef) and expr.name in key_names
        )

    # -- MATCH_RECOGNIZE -------------------------------------------------------------------

    def _match_recognize(self, match: exp.MatchRecognize) -> None:
        if len(self.relations) != 1 or self.relations[0].kind is not SourceKind.STREAM:
            self.fail(
                ErrorCode.UNSUPPORTED,
                "MATCH_RECOGNIZE needs exactly one STREAM as input",
                match,
            )
        relation = self.relations[0]
        partition_nodes = match.args.get("partition_by") or []
        partition = tuple(self._row(p, "PARTITION BY") for p in partition_nodes)
        order = match.args.get("order")
        if order is None or len(order.expressions) != 1:
            self.fail(ErrorCode.UNSUPPORTED, "MATCH_RECOGNIZE needs ORDER BY the event time", match)
        order_field = self._event_time_field(
            self._row(order.expressions[0].this, "ORDER BY"), order.expressions[0]
        )
        pattern_node = match.args.get("pattern")
        pattern_text = (
            pattern_node.name if isinstance(pattern_node, exp.Expr) else str(pattern_node)
        )
        try:
            tree = parse_pattern(pattern_text)
        except PatternError as error:
            line, column = self.program.locator.of(pattern_node)
            offset = self.program.text.find(pattern_text)
            if offset >= 0:
                line, column = position(self.program.text, offset + error.offset)
            raise _Stop(SqlError(ErrorCode.INVALID_PATTERN, str(error), line, column)) from None
        pattern_variables = variables(tree)
        definitions: list[tuple[str, bound.Expr]] = []
        for definition in match.args.get("define") or []:
            variable = definition.alias
            if variable.upper() not in {v.upper() for v in pattern_variables}:
                self.fail(
                    ErrorCode.INVALID_PATTERN,
                    f"DEFINE {variable} is not a variable of PATTERN ({pattern_text})",
                    definition,
                )
            condition = self.binder.bind(
                definition.this,
                lambda c: self._pattern_column(c, relation, pattern_variables),
                self._navigation(relation, pattern_variables),
                context="DEFINE",
            )
            self.binder.require_boolean(condition, definition.this, "DEFINE")
            definitions.append((variable, condition))
        measures: list[tuple[str, bound.Expr]] = []
        for measure in match.args.get("measures") or []:
            if isinstance(measure, exp.MatchRecognizeMeasure):
                measure = measure.this
            name = measure.alias_or_name
            value = self.binder.bind(
                measure.this if isinstance(measure, exp.Alias) else measure,
                lambda c: self._pattern_column(c, relation, pattern_variables),
                self._navigation(relation, pattern_variables),
                context="MEASURES",
            )
            measures.append((name, value))
        after = match.args.get("after")
        after_text = (
            " ".join(
                (after.name if isinstance(after, exp.Expr) else str(after or "")).split()
            ).upper()
            or "AFTER MATCH SKIP PAST LAST ROW"
        )
        within = match.args.get("within")
        partition_names = tuple(p.alias_or_name for p in partition_nodes)
        self.query.match = MatchSpec(
            partition_by=partition,
            partition_names=partition_names,
            order_field=order_field,
            pattern=pattern_text,
            definitions=tuple(definitions),
            measures=tuple(measures),
            after_match=after_text,
            within_ms=interval_ms(within, self.fail) if within is not None else None,
        )
        self._match_output_names = [*partition_names, *(n for n, _ in measures)]
        self._match_output_exprs: list[bound.Expr] = [
            *(bound.ColumnRef(p.type, n) for p, n in zip(partition, partition_names, strict=True)),
            *(bound.ColumnRef(v.type, n) for n, v in measures),
        ]

    def _match_output(self, node: exp.Expr) -> bound.Expr:
        outputs = {
            n.lower(): e
            for n, e in zip(self._match_output_names, self._match_output_exprs, strict=True)
        }

        def resolve(column: exp.Column) -> bound.Expr:
            found = outputs.get(column.name.lower())
            if found is None or len(column.parts) != 1:
                self.fail(
                    ErrorCode.UNKNOWN_COLUMN,
                    f"unknown column '{column.sql()}': after MATCH_RECOGNIZE only the "
                    f"PARTITION BY columns and MEASURES exist"
                    + suggestion(column.name, self._match_output_names),
                    column,
                )
            return found

        return self.binder.bind(node, resolve, context="SELECT")

    def _pattern_column(
        self, column: exp.Column, relation: Relation, pattern_variables: set[str]
    ) -> bound.Expr:
        parts = [p.name for p in column.parts]
        if len(parts) == 2 and parts[0].upper() in {v.upper() for v in pattern_variables}:
            found = relation.find(parts[1])
            if found is None:
                self._unknown_column(column, [relation], name=parts[1])
            return bound.ColumnRef(found.type, f"{parts[0].upper()}.{found.field}")
        return self._resolve(column, [relation])

    def _navigation(self, relation: Relation, pattern_variables: set[str]) -> Intercept:
        def intercept(node: exp.Expr) -> bound.Expr | None:
            if isinstance(node, exp.First | exp.Last) or (
                isinstance(node, exp.Anonymous)
                and node.name.upper() in ("FIRST", "LAST", "PREV", "NEXT")
            ):
                name, args = call_parts(node)
                name = name.upper()
                if not args:
                    self.fail(ErrorCode.WRONG_ARGUMENT_COUNT, f"{name} needs a column", node)
                target = self.binder.bind(
                    args[0], lambda c: self._pattern_column(c, relation, pattern_variables)
                )
                offset = 1 if name in ("PREV", "NEXT") else 0
                if len(args) > 1:
                    given = small_int(args[1].name) if isinstance(args[1], exp.Literal) else None
                    if given is None:
                        self.fail(
                            ErrorCode.WRONG_ARGUMENT_TYPE,
                            f"{name}'s offset must be an integer literal",
                            args[1],
                        )
                    offset = given
                return bound.Call(target.type, name, (target, bound.Literal(t.INTEGER, offset)))
            if is_aggregate_call(node):
                call = self.binder.aggregate(
                    node,  # type: ignore[arg-type]
                    lambda n: self.binder.bind(
                        n, lambda c: self._pattern_column(c, relation, pattern_variables)
                    ),
                )
                return bound.Call(call.type, f"MATCH_{call.function}", call.args)
            return None

        return intercept

    # -- output ----------------------------------------------------------------------------

    def _partition_by(self, select: exp.Select) -> None:
        clause = select.args.get("partition_by")
        if clause is None:
            return
        if self.query.is_aggregate:
            self.fail(
                ErrorCode.UNSUPPORTED,
                "PARTITION BY cannot be combined with GROUP BY (the group key is the key)",
                clause,
            )
        keys = []
        for index, item in enumerate(clause.expressions):
            keys.append((f"_k_{index}", self._row(item, "PARTITION BY")))
        self.query.partition_by = keys
        select_by_expr = {expr: name for name, expr in self.query.select}
        self.query.key_fields = tuple(
            select_by_expr[expr] for _, expr in keys if expr in select_by_expr
        )

    def _emit(self, select: exp.Select, window: _WindowRef | None) -> None:
        emit = select.args.get("emit")
        requested = EmitMode(str(emit.this).upper()) if emit is not None else None
        if window is None:
            if requested is EmitMode.FINAL:
                self.fail(
                    ErrorCode.UNSUPPORTED,
                    "EMIT FINAL needs a windowed aggregation (a window closes; a running "
                    "total never does)",
                    emit,
                )
            self.query.emit = EmitMode.CHANGES
            return
        default = EmitMode.CHANGES if window.spec.syntax is WindowSyntax.KSQL else EmitMode.FINAL
        self.query.emit = requested or default

    def _check_output_names(self) -> None:
        seen: set[str] = set()
        for name, _ in self.query.select:
            if name.lower() in seen:
                self.fail(
                    ErrorCode.DUPLICATE_ALIAS,
                    f"the query produces column '{name}' twice; give one an alias",
                    self.node,
                )
            seen.add(name.lower())


def variables(node: PatternNode) -> set[str]:
    """Every pattern variable named in a PATTERN tree."""
    if isinstance(node, PatternVar):
        return {node.name}
    if isinstance(node, PatternQuantified):
        return variables(node.item)
    if isinstance(node, PatternConcat):
        return set().union(*(variables(item) for item in node.items))
    if isinstance(node, PatternAlt):
        return set().union(*(variables(option) for option in node.options))
    return set()


def _conjuncts(node: exp.Expr) -> list[exp.Expr]:
    if isinstance(node, exp.Paren):
        return _conjuncts(node.this)
    if isinstance(node, exp.And):
        return _conjuncts(node.this) + _conjuncts(node.expression)
    return [node]


def _and_all(parts: list[bound.Expr]) -> bound.Expr | None:
    combined: bound.Expr | None = None
    for part in parts:
        combined = part if combined is None else bound.Call(t.BOOLEAN, "AND", (combined, part))
    return combined
