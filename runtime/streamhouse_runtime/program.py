"""What a deployable query is: the sources' DDL plus exactly one persistent query that the
runtime can execute. The operator validates with this at apply time; pods load with it."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping

from streamhouse_runtime.exec.topology import NotExecutable, split_stages
from streamhouse_runtime.plan.nodes import Sink
from streamhouse_runtime.plan.planner import plan_statement
from streamhouse_runtime.sql.analyzer import analyze
from streamhouse_runtime.sql.catalog import Source
from streamhouse_runtime.sql.errors import ErrorCode, SqlError, SqlValidationError
from streamhouse_runtime.sql.query import AnalyzedStatement, Program


def load_single_query(
    sql: str, shared: Mapping[str, Source] | None = None
) -> tuple[Program, AnalyzedStatement]:
    """Analyze `sql` (names it does not declare resolve against the `shared` catalog); it must
    hold exactly one persistent query that the runtime can run."""
    program = analyze(sql, shared)
    queries = program.persistent_queries
    if not queries:
        raise SqlValidationError(
            [
                SqlError(
                    ErrorCode.NO_PERSISTENT_QUERY,
                    "no persistent query: add CREATE STREAM|TABLE ... AS SELECT or INSERT INTO",
                    program.statements[-1].line if program.statements else 1,
                    1,
                )
            ]
        )
    if len(queries) > 1:
        raise SqlValidationError(
            [
                SqlError(
                    ErrorCode.MULTIPLE_PERSISTENT_QUERIES,
                    f"one StreamQuery runs one persistent query; this SQL has {len(queries)} "
                    f"(lines {', '.join(str(q.line) for q in queries)})",
                    queries[1].line,
                    1,
                )
            ]
        )
    statement = queries[0]
    plan = plan_statement(statement)
    assert isinstance(plan, Sink)
    try:
        split_stages(plan)
    except NotExecutable as error:
        raise SqlValidationError(
            [SqlError(ErrorCode.UNSUPPORTED, str(error), statement.line, 1)]
        ) from None
    return program, statement


def load_udfs(program: Program, udf_path: str = "") -> dict[str, Callable[..., object]]:
    """Import every CREATE FUNCTION ... LANGUAGE PYTHON AS 'module:callable'."""
    if udf_path and udf_path not in sys.path:
        sys.path.insert(0, udf_path)
    functions: dict[str, Callable[..., object]] = {}
    for function in program.catalog.functions.values():
        module_name, _, attribute = function.target.partition(":")
        module = importlib.import_module(module_name)
        target = getattr(module, attribute)
        if not callable(target):
            raise TypeError(f"{function.target} is not callable")
        functions[function.name] = target
    return functions
