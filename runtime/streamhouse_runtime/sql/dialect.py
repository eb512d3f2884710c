"""The StreamHouse SQL dialect: sqlglot's Postgres dialect plus ksqlDB and Flink streaming syntax.

Only syntax lives here: `parse_statements` turns SQL text into sqlglot trees (custom nodes from
`streamhouse_runtime.sql.nodes` for what sqlglot has no node for) and never resolves names or
checks types.  Every tree renders back with ``tree.sql(dialect=StreamHouse)`` to SQL that
re-parses to an equal tree.

Why Postgres as the base rather than sqlglot's RisingWave dialect (the nearest streaming one):
RisingWave is Postgres plus three things, and all three get in our way.  Its parser claims
``KEY`` as a table property (we need ``key = '...'`` as a plain WITH property), it disables table
hints for CREATE SINK's ``WITH`` (irrelevant: we parse our own WITH clause), and its generator
wraps struct field access in parentheses (``(a).b``), which ksqlDB/Flink users would not
recognise.  Postgres gives the same tokenizer and expression grammar without those conflicts.

Conventions the analyzer can rely on:

* Names are `exp.Identifier` nodes; statement ``kind``/``bound``/``language`` args are upper-case
  strings; ``replace``/``exists`` are bools; list args are lists.
* Every duration is an `exp.Interval` whose ``unit`` is a singular upper-case `exp.Var`
  (``MINUTES`` -> ``MINUTE``), whether written ``INTERVAL '5' MINUTES`` or ksqlDB's ``5 MINUTES``.
* ``STRING`` is `DType.TEXT`, ``VARCHAR`` is `DType.VARCHAR`, ``BYTES`` is `DType.VARBINARY`,
  ``DOUBLE``/``FLOAT`` are `DType.DOUBLE`; ARRAY/MAP/STRUCT are nested `exp.DataType` nodes
  (STRUCT fields are `exp.ColumnDef`).
* ``a.b.c`` is sqlglot's usual qualified `exp.Column` (the analyzer decides whether ``a`` is a
  table or a struct column); ksqlDB's ``a->b`` is `FieldAccess` so it keeps its own rendering.
* ``->`` is therefore never a lambda arrow; ksqlDB's ``x => ...`` and ``(k, v) => ...`` are
  `exp.Lambda` nodes whose body keeps the parameters as plain columns.
"""

from __future__ import annotations

import typing as t

from sqlglot import exp, generator
from sqlglot.dialects.postgres import Postgres
from sqlglot.errors import ErrorLevel, ParseError, TokenError
from sqlglot.generators.postgres import PostgresGenerator
from sqlglot.parsers.postgres import PostgresParser
from sqlglot.tokenizer_core import Token, TokenType

from streamhouse_runtime.sql.limits import position
from streamhouse_runtime.sql.nodes import (
    CreateAs,
    CreateFunction,
    CreateSource,
    DropSource,
    Emit,
    FieldAccess,
    GroupWindow,
    GroupWindowBound,
    InsertInto,
    KeyColumnConstraint,
    KsqlWindow,
    PartitionByClause,
    WindowTableFunction,
    Within,
)
from streamhouse_runtime.sql.pattern import PatternError, parse_pattern

__all__ = ["NestingTooDeep", "StreamHouse", "parse_statements"]

T = t.TypeVar("T")

# Singular forms of every unit we normalise; ksqlDB accepts both numbers, SQL intervals often
# carry plurals ("INTERVAL '5' MINUTES"), and the analyzer should only ever see one spelling.
_UNITS: dict[str, str] = {
    **{unit: unit for unit in ("MILLISECOND", "SECOND", "MINUTE", "HOUR", "DAY", "WEEK")},
    **{f"{unit}S": unit for unit in ("MILLISECOND", "SECOND", "MINUTE", "HOUR", "DAY", "WEEK")},
    "MONTHS": "MONTH",
    "YEARS": "YEAR",
    "MICROSECONDS": "MICROSECOND",
}
# Units a ksqlDB duration (`5 MINUTES`) may use; months/years have no fixed length.
_KSQL_UNITS = frozenset(("MILLISECOND", "SECOND", "MINUTE", "HOUR", "DAY", "WEEK"))

_KSQL_WINDOW_KINDS = frozenset(("TUMBLING", "HOPPING", "SESSION"))
_KSQL_WINDOW_LABELS = {
    "size": "SIZE",
    "advance": "ADVANCE BY",
    "retention": "RETENTION",
    "grace": "GRACE PERIOD",
    "gap": "a gap duration",
}
_FLINK_WINDOW_KINDS = frozenset(("TUMBLE", "HOP", "SESSION"))

# ksqlDB functions that sqlglot would read as its own nodes (with other names, argument shapes
# or argument counts: ARRAY_JOIN needs two arguments there, RANDOM becomes RAND): read as plain
# calls, so the binder sees them as written.
_PLAIN_CALLS = frozenset(
    (
        *("SIN", "COS", "TAN", "COT", "ASIN", "ACOS", "ATAN", "ATAN2", "SINH", "COSH", "TANH"),
        *("DEGREES", "RADIANS", "PI", "CBRT", "TRUNC", "RANDOM", "CHR", "UUID", "ENCODE"),
        *("ARRAY_DISTINCT", "ARRAY_EXCEPT", "ARRAY_INTERSECT", "ARRAY_JOIN", "ARRAY_MAX"),
        *("ARRAY_MIN", "ARRAY_REMOVE", "ARRAY_SORT", "ARRAY_UNION", "MAP_KEYS", "JSON_KEYS"),
        *("GENERATE_SERIES", "REGEXP_EXTRACT_ALL", "UNIX_DATE"),
        "MAP",  # ksqlDB's MAP(k := v, ...) takes any number of entries, sqlglot's at most two
        *("TRANSFORM", "FILTER", "REDUCE"),  # ksqlDB's lambda functions, 2 or 3 arguments
    )
)
# Interval roles of each Flink window family, in Flink's positional order (HOP: slide, size).
_FLINK_WINDOW_ARGS: dict[str, tuple[str, ...]] = {
    "TUMBLE": ("size",),
    "HOP": ("slide", "size"),
    "SESSION": ("gap",),
}
# Flink's named TVF arguments, mapped to WindowTableFunction args.
_TVF_NAMED_ARGS = {
    "DATA": "this",
    "TIMECOL": "time_column",
    "SIZE": "size",
    "SLIDE": "slide",
    "GAP": "gap",
}
_TVF_ARG_NAMES = {role: name for name, role in _TVF_NAMED_ARGS.items()}
# Words that start a clause after a table reference, so they must never be read as its alias
# (`FROM t EMIT CHANGES`, `JOIN s WITHIN 1 HOUR`).  They stay usable as column names.
_NOT_TABLE_ALIASES = frozenset(("EMIT", "WITHIN"))
# Only these statements exist in StreamHouse SQL; anything else is a parse error rather than
# sqlglot's catch-all exp.Command.
_QUERY_START_TOKENS = frozenset((TokenType.SELECT, TokenType.WITH, TokenType.L_PAREN))
_WITHIN_META = "streamhouse.within"
# Where a CREATE FUNCTION's LANGUAGE keyword starts (the language is kept as a plain string).
LANGUAGE_OFFSET_META = "streamhouse.language_offset"


def _singular_unit(unit: str) -> str:
    upper = unit.upper()
    return _UNITS.get(upper, upper)


def _interval(amount: str, unit: str) -> exp.Interval:
    """The canonical interval node: the shape sqlglot builds for ``INTERVAL '5' MINUTE``."""
    return exp.Interval(this=exp.Literal.string(amount), unit=exp.var(_singular_unit(unit)))


class StreamHouse(Postgres):
    """sqlglot dialect for StreamHouse SQL (see the module docstring for the conventions)."""

    # Array subscripts stay as written (1-based, like ksqlDB and Flink); the runtime's
    # ELEMENT_AT is 1-based too, so no shifting is wanted on the way in or out.
    INDEX_OFFSET = 0

    class Tokenizer(Postgres.Tokenizer):
        # ksqlDB and Flink quote identifiers with backticks; they quote exactly like double
        # quotes (spelling kept, any character, a doubled quote escapes itself).
        IDENTIFIERS: t.ClassVar = ['"', "`"]
        KEYWORDS: t.ClassVar = {
            **Postgres.Tokenizer.KEYWORDS,
            # Postgres has no MATCH_RECOGNIZE; without the keyword it is read as a table alias.
            "MATCH_RECOGNIZE": TokenType.MATCH_RECOGNIZE,
            # ksqlDB/Flink's binary type; VARBINARY is the closest sqlglot type.
            "BYTES": TokenType.VARBINARY,
        }

    class Parser(PostgresParser):
        # SESSION is a keyword (SET SESSION ...) and so is not a function name by default.
        FUNC_TOKENS: t.ClassVar = {*PostgresParser.FUNC_TOKENS, TokenType.SESSION}

        # ksqlDB's `->` is struct field access, so it is neither a JSON operator nor a lambda.
        COLUMN_OPERATORS: t.ClassVar = {
            **PostgresParser.COLUMN_OPERATORS,
            TokenType.ARROW: lambda self, this, field: self._field_access(this, field),
        }
        JSON_OPERATORS: t.ClassVar = {
            k: v for k, v in PostgresParser.JSON_OPERATORS.items() if k != TokenType.ARROW
        }
        # ksqlDB's lambdas are written with `=>` (`x => x + 1`, `(k, v) => v > 0`); the body's
        # names stay columns, and the binder resolves a lambda's parameters first.
        LAMBDAS: t.ClassVar = {
            TokenType.FARROW: lambda self, expressions: self.expression(
                exp.Lambda(this=self._parse_disjunction(), expressions=expressions)
            ),
        }

        FUNCTIONS: t.ClassVar = {
            k: v for k, v in PostgresParser.FUNCTIONS.items() if k not in _PLAIN_CALLS
        }
        FUNCTION_PARSERS: t.ClassVar = {
            **{k: v for k, v in PostgresParser.FUNCTION_PARSERS.items() if k not in _PLAIN_CALLS},
            **{
                kind: (lambda self, kind=kind: self._parse_group_window(kind, None))
                for kind in _FLINK_WINDOW_KINDS
            },
            **{
                f"{kind}_{bound}": (
                    lambda self, kind=kind, bound=bound: self._parse_group_window(kind, bound)
                )
                for kind in _FLINK_WINDOW_KINDS
                for bound in ("START", "END")
            },
        }

        STATEMENT_PARSERS: t.ClassVar = {
            **PostgresParser.STATEMENT_PARSERS,
            TokenType.CREATE: lambda self: self._parse_streamhouse_create(),
            TokenType.DROP: lambda self: self._parse_drop_source(),
            TokenType.INSERT: lambda self: self._parse_insert_into(),
        }

        QUERY_MODIFIER_PARSERS: t.ClassVar = {
            **PostgresParser.QUERY_MODIFIER_PARSERS,
            TokenType.WINDOW: lambda self: self._parse_window_modifier(),
            TokenType.PARTITION_BY: lambda self: (
                "partition_by",
                self._parse_partition_by_clause(),
            ),
        }
        QUERY_MODIFIER_TOKENS: t.ClassVar = set(QUERY_MODIFIER_PARSERS)

        # Set by _parse_join just before sqlglot parses the joined table, consumed by the first
        # _parse_table call: only that table may be followed by WITHIN.
        _join_table_pending = False

        # -- types -------------------------------------------------------------------------------

        def _parse_types(
            self,
            check_func: bool = False,
            schema: bool = False,
            allow_identifiers: bool = True,
            with_collation: bool = False,
        ) -> exp.Expr | None:
            # In an expression, sqlglot first tries `ARRAY[...]` as a type (Postgres's
            # `INT ARRAY[3]`), parses the whole bracket, then retreats and parses it again as
            # an array: twice per level, so 30 nested `ARRAY[` take hours. A type never starts
            # with `ARRAY[` or `MAP[` in our grammar (ARRAY<T>, MAP<K, V>), so skip the attempt.
            if (
                check_func
                and self._curr is not None
                and self._curr.token_type in (TokenType.ARRAY, TokenType.MAP)
                and self._next is not None
                and self._next.token_type == TokenType.L_BRACKET
            ):
                return None
            return super()._parse_types(check_func, schema, allow_identifiers, with_collation)

        # -- lists -------------------------------------------------------------------------------

        def _parse_csv(
            self, parse_method: t.Callable[[], T | None], sep: TokenType = TokenType.COMMA
        ) -> list[T]:
            # sqlglot skips an empty list item, so `a,, b`, `, a`, `IN (,)` and `f(s,, 3)` read
            # as if the stray comma were not there (`f(s, 3)`: another meaning). Every
            # comma-separated list of the grammar comes through here; an empty item is a syntax
            # error at the stray comma (or, for a trailing comma, at that comma).
            if sep != TokenType.COMMA:
                return super()._parse_csv(parse_method, sep)
            first = parse_method()
            if first is None:
                if self._curr is not None and self._curr.token_type == TokenType.COMMA:
                    self.raise_error("Unexpected ',': a list item is missing before it", self._curr)
                return []
            items = [first]
            parse_result: T | None = first
            while self._match(sep):
                comma = self._prev
                if isinstance(parse_result, exp.Expr):
                    self._add_comments(parse_result)
                parse_result = parse_method()
                if parse_result is None:
                    if self._curr is not None and self._curr.token_type == TokenType.COMMA:
                        self.raise_error(
                            "Unexpected ',': a list item is missing before it", self._curr
                        )
                    following = self._curr.text if self._curr is not None else "the end"
                    self.raise_error(f"Unexpected ',' before {following}", comma)
                    break
                items.append(parse_result)
            return items

        # -- statements --------------------------------------------------------------------------

        def _parse_statement(self) -> exp.Expr | None:
            if not self._curr:
                return None
            start = self._curr
            if start.token_type in (TokenType.CREATE, TokenType.DROP, TokenType.INSERT):
                return super()._parse_statement()
            if start.token_type == TokenType.SEMICOLON:
                # A `;` that carries a trailing comment arrives as its own statement; sqlglot
                # makes it an exp.Semicolon, which parse_statements drops.
                return super()._parse_statement()
            if start.token_type in _QUERY_START_TOKENS:
                statement = super()._parse_statement()
                if isinstance(statement, exp.Query):
                    return statement
            self.raise_error(
                "Expected CREATE, DROP, INSERT INTO or a SELECT query at the start of a statement",
                start,
            )
            return None

        def _parse_streamhouse_create(self) -> exp.Expr:
            replace = self._match_text_seq("OR", "REPLACE")
            if self._match(TokenType.FUNCTION):
                return self._parse_create_function(replace)
            if self._match(TokenType.TABLE):
                kind = "TABLE"
            elif self._match_text_seq("STREAM"):
                kind = "STREAM"
            else:
                self.raise_error("Expected STREAM, TABLE or FUNCTION after CREATE")
                kind = ""
            exists = self._match_text_seq("IF", "NOT", "EXISTS")
            name = self._parse_object_name(kind.lower())

            columns: list[exp.Expr] = []
            if self._match(TokenType.L_PAREN):
                columns = self._parse_csv(self._parse_source_column)
                self._match_r_paren()
            properties = self._parse_with_properties()

            if self._match(TokenType.ALIAS):
                if columns:
                    self.raise_error(f"CREATE {kind} ... AS SELECT cannot declare columns")
                return self.expression(
                    CreateAs(
                        this=name,
                        kind=kind,
                        properties=properties,
                        expression=self._parse_statement_query(),
                        replace=replace,
                        exists=exists,
                    )
                )
            return self.expression(
                CreateSource(
                    this=name,
                    kind=kind,
                    columns=columns,
                    properties=properties,
                    replace=replace,
                    exists=exists,
                )
            )

        def _parse_object_name(self, what: str) -> exp.Identifier:
            name = self._parse_id_var(any_token=False)
            if not isinstance(name, exp.Identifier):
                self.raise_error(f"Expected a {what} name")
                return exp.to_identifier("_")
            return name

        def _parse_source_column(self) -> exp.Expr:
            # Any non-reserved word is a valid column name: `key`, `timestamp`, `value`, ...
            name = self._parse_id_var(any_token=True)
            if not isinstance(name, exp.Identifier):
                self.raise_error("Expected a column name")
            kind = self._parse_types(schema=True)
            if kind is None:
                self.raise_error(f"Expected a type for column {name.sql() if name else ''}")
            constraints: list[exp.Expr] = []
            while True:
                if self._match(TokenType.PRIMARY_KEY):
                    constraint: exp.Expr = exp.PrimaryKeyColumnConstraint()
                elif self._match_text_seq("KEY"):
                    constraint = KeyColumnConstraint()
                elif self._match_text_seq("NOT", "NULL"):
                    constraint = exp.NotNullColumnConstraint()
                else:
                    break
                constraints.append(self.expression(exp.ColumnConstraint(kind=constraint)))
            return self.expression(exp.ColumnDef(this=name, kind=kind, constraints=constraints))

        def _parse_with_properties(self) -> list[exp.Expr]:
            if not self._match(TokenType.WITH):
                return []
            self._match_l_paren()
            properties = self._parse_csv(self._parse_source_property)
            self._match_r_paren()
            return properties

        def _parse_source_property(self) -> exp.Expr:
            key = self._parse_id_var(any_token=True)
            if not isinstance(key, exp.Identifier):
                self.raise_error("Expected a property name")
                key = exp.to_identifier("_")
            # Property names are case-insensitive: store them lower-case, quoted or not.
            key.set("this", key.name.lower())
            if not self._match(TokenType.EQ):
                self.raise_error(f"Expected '=' after property {key.name}")
            value: exp.Expr | None
            if self._match(TokenType.TRUE):
                value = exp.true()
            elif self._match(TokenType.FALSE):
                value = exp.false()
            else:
                value = self._parse_string() or self._parse_number()
            if not isinstance(value, (exp.Literal, exp.Boolean)):
                self.raise_error(f"Expected a string, number or boolean value for {key.name}")
            return self.expression(exp.Property(this=key, value=value))

        def _parse_statement_query(self) -> exp.Expr | None:
            start = self._curr
            query = self._parse_ddl_select() if start.token_type in _QUERY_START_TOKENS else None
            if not isinstance(query, exp.Query):
                self.raise_error("Expected a SELECT query", start)
            return query

        def _parse_create_function(self, replace: bool) -> exp.Expr:
            name = self._parse_object_name("function")
            self._match_l_paren()
            params: list[exp.Expr] = []
            if not self._match(TokenType.R_PAREN, advance=False):
                params = self._parse_csv(self._parse_function_param)
            self._match_r_paren()

            # Accept the clauses in any order (Flink writes AS before LANGUAGE), each once.
            clauses: dict[str, exp.Expr] = {}
            language_token: Token | None = None
            while self._curr:
                token = self._curr
                if self._match_text_seq("RETURNS"):
                    key = "returns"
                    value = self._parse_types()
                elif self._match_text_seq("LANGUAGE"):
                    key = "language"
                    language_token = token
                    value = self._parse_id_var(any_token=True)
                elif self._match(TokenType.ALIAS):
                    key = "definition"
                    value = self._parse_string()
                    if not isinstance(value, exp.Literal):
                        self.raise_error("Expected a string literal after AS")
                else:
                    break
                if value is None:
                    self.raise_error(f"Expected a value after {token.text.upper()}")
                if key in clauses:
                    self.raise_error(f"Duplicate {token.text.upper()} clause", token)
                if value is not None:
                    clauses[key] = value
            for key, clause in (
                ("returns", "RETURNS <type>"),
                ("language", "LANGUAGE <name>"),
                ("definition", "AS '<definition>'"),
            ):
                if key not in clauses:
                    self.raise_error(f"CREATE FUNCTION requires {clause}")
            language = clauses.get("language")
            function = self.expression(
                CreateFunction(
                    this=name,
                    params=params,
                    returns=clauses.get("returns"),
                    language=language.name.upper() if language else None,
                    definition=clauses.get("definition"),
                    replace=replace,
                )
            )
            if language_token is not None:
                function.meta[LANGUAGE_OFFSET_META] = language_token.start
            return function

        def _parse_function_param(self) -> exp.Expr:
            name = self._parse_id_var(any_token=True)
            if not isinstance(name, exp.Identifier):
                self.raise_error("Expected a parameter name")
            kind = self._parse_types()
            if kind is None:
                self.raise_error("Expected a parameter type")
            return self.expression(exp.ColumnDef(this=name, kind=kind))

        def _parse_drop_source(self) -> exp.Expr:
            if self._match(TokenType.TABLE):
                kind = "TABLE"
            elif self._match_text_seq("STREAM"):
                kind = "STREAM"
            else:
                self.raise_error("Expected STREAM or TABLE after DROP")
                kind = ""
            exists = self._match_text_seq("IF", "EXISTS")
            name = self._parse_object_name(kind.lower())
            return self.expression(DropSource(this=name, kind=kind, exists=exists))

        def _parse_insert_into(self) -> exp.Expr:
            if not self._match(TokenType.INTO):
                self.raise_error("Expected INTO after INSERT")
            name = self._parse_object_name("stream")
            return self.expression(InsertInto(this=name, expression=self._parse_statement_query()))

        # -- query clauses -----------------------------------------------------------------------

        def _parse_query_modifiers(self, this: t.Any) -> t.Any:
            if isinstance(this, exp.Select) and this.args.get("emit"):
                # sqlglot calls this again on a finished statement; nothing may follow EMIT
                # (but LIMIT, already consumed), so leave the rest to the trailing-token check.
                return this
            this = super()._parse_query_modifiers(this)
            # EMIT is not a token type, so it cannot sit in QUERY_MODIFIER_PARSERS.
            emit_token = self._curr
            if isinstance(this, exp.Select) and self._match_text_seq("EMIT"):
                if not self._match_texts(("CHANGES", "FINAL")):
                    self.raise_error("Expected CHANGES or FINAL after EMIT")
                this.set("emit", self.expression(Emit(this=self._prev.text.upper()), emit_token))
                # EMIT ends a ksqlDB query; only its LIMIT may follow.
                if self._curr.token_type == TokenType.LIMIT:
                    limit_token = self._curr
                    if this.args.get("limit"):
                        self.raise_error("Found multiple 'LIMIT' clauses", limit_token)
                    this.set("limit", self._parse_limit())
            return this

        def _parse_window_modifier(self) -> tuple[str, exp.Expr | list[exp.Expr] | None]:
            # `WINDOW TUMBLING (...)` is ksqlDB; `WINDOW w AS (...)` is a SQL named window.
            if self._next.text.upper() in _KSQL_WINDOW_KINDS and (
                self._index + 2 >= self._tokens_size
                or self._tokens[self._index + 2].token_type != TokenType.ALIAS
            ):
                return "ksql_window", self._parse_ksql_window()
            return "windows", self._parse_window_clause()

        def _parse_ksql_window(self) -> KsqlWindow:
            window_token = self._curr
            self._match(TokenType.WINDOW)
            self._advance()
            kind_token = self._prev
            kind = kind_token.text.upper()
            self._match_l_paren()
            args: dict[str, exp.Interval] = {}
            while True:
                token = self._curr
                if self._match_text_seq("SIZE"):
                    key = "size"
                elif self._match_text_seq("ADVANCE", "BY"):
                    key = "advance"
                elif self._match_text_seq("RETENTION"):
                    key = "retention"
                elif self._match_text_seq("GRACE", "PERIOD"):
                    key = "grace"
                elif kind == "SESSION":
                    key = "gap"  # ksqlDB writes the session gap bare: SESSION (30 MINUTES)
                else:
                    self.raise_error("Expected SIZE, ADVANCE BY, RETENTION or GRACE PERIOD")
                    break
                if key in args:
                    self.raise_error(
                        f"Duplicate {_KSQL_WINDOW_LABELS[key]} in WINDOW {kind}", token
                    )
                after = f"WINDOW {kind} (" if key == "gap" else _KSQL_WINDOW_LABELS[key]
                args[key] = self._parse_duration(after)
                if not self._match(TokenType.COMMA):
                    break
            self._match_r_paren()

            required = {"TUMBLING": ("size",), "HOPPING": ("size", "advance"), "SESSION": ("gap",)}
            allowed = {*required[kind], "retention", "grace"}
            for key in required[kind]:
                if key not in args:
                    label = _KSQL_WINDOW_LABELS[key]
                    self.raise_error(f"WINDOW {kind} requires {label}", kind_token)
            for key in args:
                if key not in allowed:
                    label = _KSQL_WINDOW_LABELS[key]
                    self.raise_error(f"WINDOW {kind} does not take {label}", kind_token)
            return self.expression(KsqlWindow(kind=kind, **args), window_token)

        def _parse_partition_by_clause(self) -> PartitionByClause:
            partition_token = self._curr
            self._match(TokenType.PARTITION_BY)
            return self.expression(
                PartitionByClause(expressions=self._parse_csv(self._parse_disjunction)),
                partition_token,
            )

        def _parse_table_alias(
            self, alias_tokens: t.Collection[TokenType] | None = None
        ) -> exp.TableAlias | None:
            if (
                self._curr.token_type == TokenType.VAR
                and self._curr.text.upper() in _NOT_TABLE_ALIASES
            ):
                return None
            return super()._parse_table_alias(alias_tokens)

        # -- joins -------------------------------------------------------------------------------

        def _parse_join(
            self,
            skip_join_token: bool = False,
            parse_bracket: bool = False,
            alias_tokens: t.Collection[TokenType] | None = None,
        ) -> exp.Join | None:
            self._join_table_pending = True
            try:
                join = super()._parse_join(skip_join_token, parse_bracket, alias_tokens)
            finally:
                self._join_table_pending = False
            if join is not None and isinstance(join.this, exp.Expr):
                within = join.this.meta.pop(_WITHIN_META, None)
                if within is not None:
                    join.set("within", within)
            return join

        def _parse_table(
            self,
            schema: bool = False,
            joins: bool = False,
            alias_tokens: t.Collection[TokenType] | None = None,
            parse_bracket: bool = False,
            is_db_reference: bool = False,
            parse_partition: bool = False,
            consume_pipe: bool = False,
        ) -> exp.Expr | None:
            join_table = self._join_table_pending
            self._join_table_pending = False
            table: exp.Expr | None
            if self._at_window_tvf():
                table = self._parse_window_tvf()
            else:
                table = super()._parse_table(
                    schema=schema,
                    joins=joins,
                    alias_tokens=alias_tokens,
                    parse_bracket=parse_bracket,
                    is_db_reference=is_db_reference,
                    parse_partition=parse_partition,
                    consume_pipe=consume_pipe,
                )
            # WITHIN sits between the joined table (and its alias) and ON, where sqlglot's join
            # parser has no hook; park it on the table until _parse_join moves it to the Join.
            if join_table and table is not None and self._match_text_seq("WITHIN"):
                table.meta[_WITHIN_META] = self._parse_within()
            return table

        def _parse_within(self) -> Within:
            within_token = self._prev  # WITHIN
            if self._match(TokenType.L_PAREN):
                before = self._parse_duration("WITHIN (")
                if not self._match(TokenType.COMMA):
                    self.raise_error("Expected ',' between the WITHIN (before, after) durations")
                after = self._parse_duration("WITHIN (before,")
                self._match_r_paren()
                within = Within(before=before, after=after)
            else:
                within = Within(this=self._parse_duration("WITHIN"))
            if self._match_text_seq("GRACE", "PERIOD"):
                within.set("grace", self._parse_duration("GRACE PERIOD"))
            return self.expression(within, within_token)

        # -- durations and intervals -------------------------------------------------------------

        def _parse_duration(self, after: str) -> exp.Interval:
            """A ksqlDB duration (`5 MINUTES`) or a SQL interval, as a canonical exp.Interval."""
            token = self._curr
            if token.token_type == TokenType.INTERVAL:
                interval = self._parse_interval()
                if isinstance(interval, exp.Interval) and interval.args.get("unit"):
                    return interval.update_positions(token)
                self.raise_error(f"Expected INTERVAL '<n>' <unit> after {after}", token)
            elif token.token_type == TokenType.NUMBER and token.text.isdigit():
                self._advance()
                unit_token = self._curr
                unit = _singular_unit(unit_token.text)
                if unit_token.token_type != TokenType.STRING and unit in _KSQL_UNITS:
                    self._advance()
                    return self.expression(_interval(token.text, unit), token)
                self.raise_error(
                    "Expected a time unit (MILLISECONDS, SECONDS, MINUTES, HOURS, DAYS, WEEKS)",
                    unit_token,
                )
            else:
                self.raise_error(f"Expected a duration (e.g. 5 MINUTES) after {after}")
            return _interval("0", "SECOND")

        def _parse_interval(
            self, require_interval: bool = True, parse_function_unit: bool = True
        ) -> exp.Add | exp.Interval | None:
            interval = super()._parse_interval(require_interval, parse_function_unit)
            if isinstance(interval, exp.Interval):
                unit = interval.args.get("unit")
                if isinstance(unit, exp.Var):
                    unit.set("this", _singular_unit(unit.name))
            return interval

        def _field_access(self, this: exp.Expr | None, field: exp.Expr | None) -> exp.Expr:
            if not (isinstance(field, exp.Column) and not field.table):
                self.raise_error("Expected a field name after '->'", self._prev)
                return exp.null()
            return self.expression(FieldAccess(this=this, expression=field.this))

        # -- Flink group windows -----------------------------------------------------------------

        def _parse_group_window(self, kind: str, bound: str | None) -> exp.Expr:
            name_token = self._tokens[self._index - 2]
            name = name_token.text.upper()
            roles = _FLINK_WINDOW_ARGS[kind]
            this = self._parse_disjunction()
            if this is None:
                self.raise_error(f"Expected a time column as the first argument of {name}")
            args: dict[str, exp.Expr] = {}
            for role in roles:
                if not self._match(TokenType.COMMA):
                    self.raise_error(f"{name} expects {1 + len(roles)} arguments", name_token)
                args[role] = self._parse_interval_arg(name)
            if self._curr.token_type != TokenType.R_PAREN:
                self.raise_error(
                    f"Expecting ) to close {name}: it takes {1 + len(roles)} arguments"
                )
            if bound is None:
                return self.expression(GroupWindow(kind=kind, this=this, **args))
            return self.expression(GroupWindowBound(kind=kind, bound=bound, this=this, **args))

        def _parse_interval_arg(self, name: str) -> exp.Interval:
            token = self._curr
            value = self._parse_bitwise()
            if not isinstance(value, exp.Interval):
                self.raise_error(f"Expected an INTERVAL argument to {name}", token)
                return _interval("0", "SECOND")
            return value

        # -- Flink windowing table functions -----------------------------------------------------

        def _at_window_tvf(self) -> bool:
            index = self._index
            if index + 3 >= self._tokens_size:
                return False
            tokens = self._tokens
            return (
                tokens[index].token_type == TokenType.TABLE
                and tokens[index + 1].token_type == TokenType.L_PAREN
                and tokens[index + 2].text.upper() in _FLINK_WINDOW_KINDS
                and tokens[index + 3].token_type == TokenType.L_PAREN
            )

        def _parse_window_tvf(self) -> WindowTableFunction:
            self._advance(2)  # TABLE (
            name_token = self._curr
            kind = name_token.text.upper()
            self._advance(2)  # TUMBLE (
            positional = ("this", "time_column", *_FLINK_WINDOW_ARGS[kind])
            args: dict[str, t.Any] = {}
            position = 0
            while True:
                token = self._curr
                if self._next.token_type == TokenType.FARROW:
                    named = _TVF_NAMED_ARGS.get(self._curr.text.upper())
                    if named is None or named not in positional:
                        self.raise_error(f"Unknown argument {token.text} for {kind}", token)
                        break
                    key = named
                    self._advance(2)
                else:
                    if position >= len(positional):
                        self.raise_error(f"Too many arguments for {kind}", token)
                        break
                    key = positional[position]
                    position += 1
                if key in args:
                    self.raise_error(f"Duplicate {_TVF_ARG_NAMES[key]} argument for {kind}", token)
                if key == "this":
                    args.update(self._parse_tvf_table(kind))
                elif key == "time_column":
                    args[key] = self._parse_descriptor()
                else:
                    args[key] = self._parse_interval_arg(kind)
                if not self._match(TokenType.COMMA):
                    break
            self._match_r_paren()
            self._match_r_paren()
            for key in positional:
                if key not in args:
                    flink_name = _TVF_ARG_NAMES[key]
                    self.raise_error(f"Missing {flink_name} argument for {kind}", name_token)
            alias = self._parse_table_alias()
            return self.expression(WindowTableFunction(kind=kind, alias=alias, **args))

        def _parse_tvf_table(self, kind: str) -> dict[str, t.Any]:
            if not self._match(TokenType.TABLE):
                self.raise_error(f"Expected TABLE <name> as the first argument of {kind}")
            table = self._parse_table_parts()
            partition_by: list[exp.Expr] = []
            if self._match(TokenType.PARTITION_BY):
                if kind != "SESSION":
                    self.raise_error(f"PARTITION BY is only allowed in SESSION, not {kind}")
                if self._match(TokenType.L_PAREN):
                    partition_by = self._parse_csv(self._parse_column)
                    self._match_r_paren()
                else:
                    column = self._parse_column()
                    if column is None:
                        self.raise_error("Expected a column after PARTITION BY")
                    else:
                        partition_by = [column]
            return {"this": table, "partition_by": partition_by}

        def _parse_descriptor(self) -> exp.Expr | None:
            if not self._match_text_seq("DESCRIPTOR"):
                self.raise_error("Expected DESCRIPTOR(<time column>)")
            self._match_l_paren()
            column = self._parse_column()
            if not isinstance(column, exp.Column):
                self.raise_error("Expected a column name in DESCRIPTOR")
            self._match_r_paren()
            return column

        # -- MATCH_RECOGNIZE ---------------------------------------------------------------------

        def _parse_match_recognize(self) -> exp.MatchRecognize | None:
            # Our own version of sqlglot's: it adds `WITHIN <interval>` after PATTERN, which has
            # no hook in the base method, and validates PATTERN with the CEP pattern parser so a
            # bad pattern is reported at its exact position.
            if not self._match(TokenType.MATCH_RECOGNIZE):
                return None
            self._match_l_paren()
            partition = self._parse_partition_by()
            order = self._parse_order()
            measures = (
                self._parse_csv(self._parse_match_recognize_measure)
                if self._match_text_seq("MEASURES")
                else None
            )

            rows: exp.Expr | None = None
            if self._match_text_seq("ONE", "ROW", "PER", "MATCH"):
                rows = exp.var("ONE ROW PER MATCH")
            elif self._match_text_seq("ALL", "ROWS", "PER", "MATCH"):
                rows = exp.var("ALL ROWS PER MATCH")

            after: exp.Expr | None = None
            if self._match_text_seq("AFTER", "MATCH", "SKIP"):
                if self._match_text_seq("PAST", "LAST", "ROW"):
                    after = exp.var("AFTER MATCH SKIP PAST LAST ROW")
                elif self._match_text_seq("TO", "NEXT", "ROW"):
                    after = exp.var("AFTER MATCH SKIP TO NEXT ROW")
                elif self._match_text_seq("TO", "FIRST") or self._match_text_seq("TO", "LAST"):
                    direction = self._prev.text.upper()
                    variable = self._parse_id_var(any_token=False)
                    if variable is None:
                        self.raise_error(f"Expected a pattern variable after SKIP TO {direction}")
                    else:
                        after = exp.var(f"AFTER MATCH SKIP TO {direction} {variable.sql()}")
                else:
                    self.raise_error("Expected PAST LAST ROW, TO NEXT ROW, TO FIRST or TO LAST")

            if not self._match_text_seq("PATTERN"):
                self.raise_error("Expected PATTERN (...) in MATCH_RECOGNIZE")
            pattern = self._parse_raw_pattern()

            within: exp.Interval | None = None
            if self._match_text_seq("WITHIN"):
                token = self._curr
                interval = self._parse_interval()
                if not isinstance(interval, exp.Interval):
                    self.raise_error("Expected INTERVAL '<n>' <unit> after WITHIN", token)
                else:
                    within = interval

            define = (
                self._parse_csv(self._parse_name_as_expression)
                if self._match_text_seq("DEFINE")
                else None
            )
            self._match_r_paren()

            match = self.expression(
                exp.MatchRecognize(
                    partition_by=partition,
                    order=order,
                    measures=measures,
                    rows=rows,
                    after=after,
                    pattern=pattern,
                    define=define,
                    alias=self._parse_table_alias(),
                )
            )
            # Set after validation: `within` is our extension and not in sqlglot's arg_types.
            if within is not None:
                match.set("within", within)
            return match

        def _parse_raw_pattern(self) -> exp.Expr:
            self._match_l_paren()
            open_paren = self._prev
            depth = 1
            while self._curr:
                if self._curr.token_type == TokenType.L_PAREN:
                    depth += 1
                elif self._curr.token_type == TokenType.R_PAREN:
                    depth -= 1
                    if depth == 0:
                        break
                self._advance()
            if not self._curr:
                self.raise_error("Expecting ) to close PATTERN", open_paren)
            # The pattern language is not SQL, so take the source text between the parentheses.
            offset = open_paren.end + 1
            text = self.sql[offset : self._curr.start]
            self._advance()
            try:
                parse_pattern(text)
            except PatternError as error:
                self.raise_error(
                    f"Invalid PATTERN: {error.message}", self._token_at(offset + error.offset)
                )
            return exp.var(text.strip())

        def _token_at(self, offset: int) -> Token:
            """A one-character pseudo-token at `offset` in the SQL, for precise error positions."""
            offset = min(offset, max(len(self.sql) - 1, 0))
            line, col = position(self.sql, offset)
            return Token(TokenType.VAR, self.sql[offset : offset + 1], line, col, offset, offset)

    class Generator(PostgresGenerator):
        # `INTERVAL '5' MINUTE` (the standard and Flink spelling), not Postgres's '5 MINUTE'.
        SINGLE_STRING_INTERVAL = False

        TYPE_MAPPING: t.ClassVar = {
            **PostgresGenerator.TYPE_MAPPING,
            exp.DType.TEXT: "STRING",
            exp.DType.VARBINARY: "BYTES",
            exp.DType.DOUBLE: "DOUBLE",
        }

        AFTER_HAVING_MODIFIER_TRANSFORMS: t.ClassVar = {
            "partition_by": lambda self, e: self.sql(e, "partition_by"),
            **PostgresGenerator.AFTER_HAVING_MODIFIER_TRANSFORMS,
            "emit": lambda self, e: self.sql(e, "emit"),
        }

        # -- statements --------------------------------------------------------------------------

        def _create_prefix(self, expression: exp.Expr) -> str:
            replace = "OR REPLACE " if expression.args.get("replace") else ""
            exists = "IF NOT EXISTS " if expression.args.get("exists") else ""
            return (
                f"CREATE {replace}{expression.text('kind')} {exists}{self.sql(expression, 'this')}"
            )

        def _properties(self, expression: exp.Expr) -> str:
            properties = [
                f"{self.sql(prop, 'this')}={self.sql(prop, 'value')}"
                for prop in expression.args.get("properties") or []
            ]
            return f" WITH ({', '.join(properties)})" if properties else ""

        def createsource_sql(self, expression: CreateSource) -> str:
            columns = self.expressions(expression, key="columns", flat=True)
            columns = f" ({columns})" if columns else ""
            return f"{self._create_prefix(expression)}{columns}{self._properties(expression)}"

        def createas_sql(self, expression: CreateAs) -> str:
            query = self.sql(expression, "expression")
            return f"{self._create_prefix(expression)}{self._properties(expression)} AS {query}"

        def createfunction_sql(self, expression: CreateFunction) -> str:
            replace = "OR REPLACE " if expression.args.get("replace") else ""
            params = self.expressions(expression, key="params", flat=True)
            return (
                f"CREATE {replace}FUNCTION {self.sql(expression, 'this')}({params})"
                f" RETURNS {self.sql(expression, 'returns')}"
                f" LANGUAGE {expression.text('language')}"
                f" AS {self.sql(expression, 'definition')}"
            )

        # -- query clauses -----------------------------------------------------------------------

        def query_modifiers(self, expression: exp.Expr, *sqls: str) -> str:
            window = expression.args.get("ksql_window")
            if window is None:
                return super().query_modifiers(expression, *sqls)
            # ksqlDB's grammar puts WINDOW right after FROM and the joins, before WHERE; the base
            # generator has no slot there.  Render the FROM side ourselves, then let the base
            # render everything else from a copy without those clauses.
            rest = expression.copy()
            for key in ("joins", "match", "laterals"):
                rest.set(key, None)
            head = [
                *sqls,
                *(self.sql(join) for join in expression.args.get("joins") or []),
                self.sql(expression, "match"),
                *(self.sql(lateral) for lateral in expression.args.get("laterals") or []),
                self.sql(window),
            ]
            return super().query_modifiers(rest, *head)

        def ksqlwindow_sql(self, expression: KsqlWindow) -> str:
            parts = []
            for key, keyword in (
                ("size", "SIZE "),
                ("advance", "ADVANCE BY "),
                ("gap", ""),
                ("retention", "RETENTION "),
                ("grace", "GRACE PERIOD "),
            ):
                value = expression.args.get(key)
                if value is not None:
                    parts.append(f"{keyword}{self._duration_sql(value)}")
            return self.seg(f"WINDOW {expression.text('kind')} ({', '.join(parts)})")

        def _duration_sql(self, interval: exp.Expr) -> str:
            # ksqlDB's `5 MINUTE` when the interval is that simple, the SQL form otherwise.
            unit = interval.args.get("unit")
            amount = interval.this
            if (
                isinstance(amount, exp.Literal)
                and amount.name.isdigit()
                and isinstance(unit, exp.Var)
                and unit.name in _KSQL_UNITS
            ):
                return f"{amount.name} {unit.name}"
            return self.sql(interval)

        def join_sql(self, expression: exp.Join, join_op: str | None = None) -> str:
            within = expression.args.get("within")
            if not isinstance(within, Within):
                return super().join_sql(expression, join_op)
            # The base join_sql has no slot between the table and ON; a windowed join is always
            # a plain [side] [kind] JOIN ... ON/USING, so it is short to render here.
            op = " ".join(p for p in (expression.side, expression.kind) if p)
            op = f"{op} JOIN" if op else "JOIN"
            condition = self.sql(expression, "on")
            if condition:
                condition = f" ON {condition}"
            elif expression.args.get("using"):
                condition = f" USING ({self.expressions(expression, key='using', flat=True)})"
            return f"{self.seg(op)} {self.sql(expression, 'this')} {self.sql(within)}{condition}"

        def within_sql(self, expression: Within) -> str:
            if expression.this is not None:
                sql = f"WITHIN {self._duration_sql(expression.this)}"
            else:
                before = self._duration_sql(expression.args["before"])
                after = self._duration_sql(expression.args["after"])
                sql = f"WITHIN ({before}, {after})"
            grace = expression.args.get("grace")
            if grace is not None:
                sql = f"{sql} GRACE PERIOD {self._duration_sql(grace)}"
            return sql

        def _window_args(self, expression: exp.Expr) -> str:
            roles = _FLINK_WINDOW_ARGS[expression.text("kind")]
            return ", ".join(self.sql(expression, key) for key in ("this", *roles))

        def groupwindow_sql(self, expression: GroupWindow) -> str:
            return f"{expression.text('kind')}({self._window_args(expression)})"

        def groupwindowbound_sql(self, expression: GroupWindowBound) -> str:
            name = f"{expression.text('kind')}_{expression.text('bound')}"
            return f"{name}({self._window_args(expression)})"

        def windowtablefunction_sql(self, expression: WindowTableFunction) -> str:
            kind = expression.text("kind")
            table = f"TABLE {self.sql(expression, 'this')}"
            partition = expression.args.get("partition_by") or []
            if len(partition) == 1:
                table = f"{table} PARTITION BY {self.sql(partition[0])}"
            elif partition:
                table = f"{table} PARTITION BY ({self.expressions(sqls=partition, flat=True)})"
            args = [
                table,
                f"DESCRIPTOR({self.sql(expression, 'time_column')})",
                *(self.sql(expression, key) for key in _FLINK_WINDOW_ARGS[kind]),
            ]
            alias = self.sql(expression, "alias")
            alias = f" AS {alias}" if alias else ""
            return f"TABLE({kind}({', '.join(args)})){alias}"

        def matchrecognize_sql(self, expression: exp.MatchRecognize) -> str:
            # Mirrors the base method, plus our WITHIN after PATTERN (the base has no slot).
            measures = self.expressions(expression, key="measures")
            definitions = self.expressions(
                sqls=[
                    f"{self.sql(definition, 'alias')} AS {self.sql(definition, 'this')}"
                    for definition in expression.args.get("define") or []
                ]
            )
            within = self.sql(expression, "within")
            body = "".join(
                (
                    self.partition_by_sql(expression),
                    self.sql(expression, "order"),
                    self.seg(f"MEASURES{self.seg(measures)}") if measures else "",
                    self.seg(self.sql(expression, "rows")) if expression.args.get("rows") else "",
                    self.seg(self.sql(expression, "after")) if expression.args.get("after") else "",
                    self.seg(f"PATTERN ({self.sql(expression, 'pattern')})"),
                    self.seg(f"WITHIN {within}") if within else "",
                    self.seg(f"DEFINE{self.seg(definitions)}") if definitions else "",
                )
            )
            alias = self.sql(expression, "alias")
            alias = f" {alias}" if alias else ""
            return f"{self.seg('MATCH_RECOGNIZE')} {self.wrap(body)}{alias}"

        def windowspec_sql(self, expression: exp.WindowSpec) -> str:
            # `RANGE INTERVAL '1' HOUR PRECEDING` has no end bound; the base always writes
            # BETWEEN ... AND CURRENT ROW, which parses back to a different tree.
            if expression.args.get("end") is None and expression.args.get("exclude") is None:
                start = " ".join(
                    part
                    for part in (
                        self.sql(expression, "start"),
                        self.sql(expression, "start_side"),
                    )
                    if part
                )
                return f"{self.sql(expression, 'kind')} {start}"
            return super().windowspec_sql(expression)

        def datatype_sql(self, expression: exp.DataType) -> str:
            # Postgres writes arrays as INT[]; ksqlDB and Flink spell them ARRAY<INT>.
            if expression.is_type(exp.DType.ARRAY) and expression.expressions:
                return generator.Generator.datatype_sql(self, expression)
            return super().datatype_sql(expression)

        TRANSFORMS: t.ClassVar = {
            **PostgresGenerator.TRANSFORMS,
            KeyColumnConstraint: lambda self, e: "KEY",
            Emit: lambda self, e: self.seg(f"EMIT {e.name}"),
            PartitionByClause: lambda self, e: self.seg(
                f"PARTITION BY {self.expressions(e, flat=True)}"
            ),
            FieldAccess: lambda self, e: f"{self.sql(e, 'this')}->{self.sql(e, 'expression')}",
            exp.Lambda: lambda self, e: (
                f"{self.expressions(e, flat=True)} => {self.sql(e, 'this')}"
                if len(e.expressions) == 1
                else f"({self.expressions(e, flat=True)}) => {self.sql(e, 'this')}"
            ),
            DropSource: lambda self, e: (
                f"DROP {e.text('kind')} {'IF EXISTS ' if e.args.get('exists') else ''}"
                f"{self.sql(e, 'this')}"
            ),
            InsertInto: lambda self, e: (
                f"INSERT INTO {self.sql(e, 'this')} {self.sql(e, 'expression')}"
            ),
            # sqlglot maps `<key>_sql` methods to its own node classes only, so ours are
            # registered explicitly.
            CreateSource: createsource_sql,
            CreateAs: createas_sql,
            CreateFunction: createfunction_sql,
            KsqlWindow: ksqlwindow_sql,
            Within: within_sql,
            GroupWindow: groupwindow_sql,
            GroupWindowBound: groupwindowbound_sql,
            WindowTableFunction: windowtablefunction_sql,
        }


def parse_statements(sql: str) -> list[exp.Expression]:
    """Parse one or more ``;``-separated StreamHouse SQL statements.

    Returns one tree per statement (empty statements, e.g. a trailing ``;``, are skipped).

    Raises:
        NestingTooDeep: when the text nests deeper than the parser can recurse.
        sqlglot.errors.ParseError: on any syntax error, including unterminated strings and
            comments; its ``errors`` list carries ``line``, ``col`` (1-based, of the last
            character of the offending token), ``description`` and ``highlight``.
    """
    dialect = StreamHouse()
    tokenizer = dialect.tokenizer()
    try:
        tokens = tokenizer.tokenize(sql)
    except TokenError as error:
        raise _token_error(sql, tokenizer, error) from error
    parser = dialect.parser(error_level=ErrorLevel.IMMEDIATE)
    try:
        trees = parser.parse(tokens, sql)
    except RecursionError:
        # sqlglot's parser recurses per level of NOT, CASE, unary minus...; the token it had
        # reached is where the text nests too deeply.
        token = parser._curr or parser._prev
        offset = token.start if token is not None else 0
        raise NestingTooDeep(offset) from None
    return [
        tree
        for tree in trees
        if isinstance(tree, exp.Expression) and not isinstance(tree, exp.Semicolon)
    ]


class NestingTooDeep(Exception):
    """The parser ran out of recursion at character `offset` of the SQL text."""

    def __init__(self, offset: int) -> None:
        super().__init__(f"nesting too deep at offset {offset}")
        self.offset = offset


def _token_error(sql: str, tokenizer: object, error: TokenError) -> ParseError:
    # The tokenizer reports only a context snippet; its scanner's `_start` is the offset where
    # the token it failed on (an unterminated string or comment) begins.
    offset = getattr(getattr(tokenizer, "_core", tokenizer), "_start", None)
    if not isinstance(offset, int):
        offset = error.start or 0
    offset = max(min(offset, len(sql) - 1), 0)
    line, col = position(sql, offset)
    cause = error.__cause__
    # The scanner's own TokenErrors say what is missing; anything else (e.g. an IndexError
    # at the end of an unterminated comment) is not worth showing to a user.
    detail = str(cause) if isinstance(cause, TokenError) else "unterminated string or comment"
    description = f"Invalid token: {detail}"
    return ParseError.new(
        f"{description}. Line {line}, Col: {col}.",
        description=description,
        line=line,
        col=col,
        start_context=sql[max(offset - 20, 0) : offset],
        highlight=sql[offset : offset + 1],
        end_context=sql[offset + 1 : offset + 21],
    )
