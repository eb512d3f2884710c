"""What a deployable query is: the sources' DDL plus exactly one persistent query that the
runtime can execute. The operator validates with this at apply time; pods load with it."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable, Mapping
from importlib.machinery import PathFinder
from importlib.metadata import EntryPoint
from pathlib import Path
from types import ModuleType
from typing import cast

from sqlglot import exp

from streamhouse_runtime.exec.topology import NotExecutable, split_stages
from streamhouse_runtime.io import temporal
from streamhouse_runtime.plan.nodes import Sink
from streamhouse_runtime.plan.planner import plan_statement
from streamhouse_runtime.plan.stages import copartition_conflicts, stage_graph
from streamhouse_runtime.sql.analyzer import analyze
from streamhouse_runtime.sql.catalog import Source
from streamhouse_runtime.sql.compatibility import Compatibility
from streamhouse_runtime.sql.errors import ErrorCode, SqlError, SqlValidationError
from streamhouse_runtime.sql.positions import Locator
from streamhouse_runtime.sql.query import AnalyzedStatement, Program, StatementKind
from streamhouse_runtime.sql.udf_sources import (
    ENTRY_POINT_GROUP,
    definition_problem,
    entry_point_value,
    module_file,
    register_directory,
)


def load_single_query(
    sql: str,
    shared: Mapping[str, Source] | None = None,
    udf_directory_mounted: bool = True,
    compatibility: Compatibility = Compatibility.DEFAULT,
) -> tuple[Program, AnalyzedStatement]:
    """Analyze `sql` (names it does not declare resolve against the `shared` catalog); it must
    hold exactly one persistent query that the runtime can run.

    `udf_directory_mounted`: the pods will have a UDF directory (the StreamQuery names a
    ConfigMap in spec.udfs); without one, only `streamhouse.udfs` entry points can load.
    `compatibility`: the StreamQuery's spec.compatibility (`sql/compatibility.py`).
    """
    program = analyze(sql, shared, compatibility)
    if not udf_directory_mounted:
        for function in program.catalog.functions.values():
            if entry_point_value(function.target) is None:
                raise SqlValidationError(
                    [
                        SqlError(
                            ErrorCode.UDF_NOT_LOADABLE,
                            f"'{function.target}' is not a '{ENTRY_POINT_GROUP}' entry point "
                            "and no UDF directory is mounted (spec.udfs.configMapRef)",
                            function.line,
                            function.column,
                        )
                    ]
                )
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
    _check_timestamp_formats(program)
    statement = queries[0]
    plan = plan_statement(statement)
    assert isinstance(plan, Sink)
    declared = {
        source.topic: source.partitions
        for source in program.catalog.sources.values()
        if source.partitions is not None
    }
    conflicts = copartition_conflicts(stage_graph(plan), declared)
    if conflicts:
        raise SqlValidationError(
            [SqlError(ErrorCode.NOT_COPARTITIONED, text, statement.line, 1) for text in conflicts]
        )
    try:
        split_stages(plan)
    except NotExecutable as error:
        raise SqlValidationError(
            [SqlError(ErrorCode.UNSUPPORTED, str(error), statement.line, 1)]
        ) from None
    return program, statement


def _check_timestamp_formats(program: Program) -> None:
    """A source's `timestamp_format` must compile with the one temporal parser, at validation
    (admission, `streamhouse validate`) rather than when the pod starts."""
    locate = Locator(program.text)
    for statement in program.statements:
        if statement.kind is not StatementKind.CREATE_SOURCE:
            continue
        for prop in statement.node.find_all(exp.Property):
            value = prop.args.get("value")
            if prop.name.lower() != "timestamp_format" or not isinstance(value, exp.Literal):
                continue
            try:
                temporal.timestamp_parser(value.name)
            except ValueError as error:
                line, column = locate.of(value)
                raise SqlValidationError(
                    [
                        SqlError(
                            ErrorCode.INVALID_PROPERTY,
                            f"timestamp_format: {error}",
                            line,
                            column,
                        )
                    ]
                ) from None


def load_udfs(program: Program, udf_path: str = "") -> dict[str, Callable[..., object]]:
    """Load the code of every CREATE FUNCTION, from where an administrator put it only.

    A `streamhouse.udfs` entry point of the image is loaded through its entry point; any
    other definition is a module of the UDF directory `udf_path` (the mounted ConfigMap),
    found in that directory alone, never on sys.path (see `sql.udf_sources`). Raises
    SqlValidationError (E414, E415) at the definition for anything else.
    """
    functions: dict[str, Callable[..., object]] = {}
    for function in program.catalog.functions.values():
        try:
            target = _load_udf(function.target, udf_path)
        except _UdfError as error:
            raise SqlValidationError(
                [SqlError(error.code, str(error), function.line, function.column)]
            ) from None
        functions[function.name] = target
    return functions


class _UdfError(Exception):
    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code


def _load_udf(definition: str, udf_path: str) -> Callable[..., object]:
    value = entry_point_value(definition)
    if value is not None:
        entry = EntryPoint(name=definition, value=value, group=ENTRY_POINT_GROUP)
        try:
            target = entry.load()
        except Exception as error:  # the entry point's own import failed
            raise _UdfError(
                ErrorCode.UDF_NOT_LOADABLE,
                f"entry point {definition} ({value}) failed to load: {type(error).__name__}",
            ) from error
        return _callable(definition, target)
    problem = definition_problem(definition, udf_path or None)
    if problem is not None:
        raise _UdfError(ErrorCode.UDF_CODE_NOT_ALLOWED, problem)
    if not udf_path:
        raise _UdfError(
            ErrorCode.UDF_NOT_LOADABLE,
            f"'{definition}' is neither a '{ENTRY_POINT_GROUP}' entry point nor loadable: no UDF "
            "directory is configured (STREAMHOUSE_UDF_PATH; the StreamQuery's spec.udfs)",
        )
    module_name, _, attribute = definition.partition(":")
    module = _import_from_directory(module_name, udf_path)
    if not hasattr(module, attribute):
        raise _UdfError(
            ErrorCode.UDF_NOT_LOADABLE, f"module {module_name} has no attribute {attribute}"
        )
    return _callable(definition, getattr(module, attribute))


def _import_from_directory(module_name: str, udf_path: str) -> ModuleType:
    """Import `module_name` whose top-level package is found in `udf_path` only."""
    top = module_name.split(".")[0]
    loaded = sys.modules.get(top)
    if loaded is None or module_file(udf_path, top) != _file_of(loaded):
        spec = PathFinder.find_spec(top, [udf_path])
        if spec is None or spec.loader is None:
            raise _UdfError(
                ErrorCode.UDF_NOT_LOADABLE, f"no module {top} in the UDF directory {udf_path}"
            )
        # Siblings the module imports resolve after the standard library and site-packages,
        # so a UDF directory can never shadow them.
        register_directory(udf_path)
        if udf_path not in sys.path:
            sys.path.append(udf_path)
        loaded = importlib.util.module_from_spec(spec)
        sys.modules[top] = loaded
        try:
            spec.loader.exec_module(loaded)
        except Exception as error:
            del sys.modules[top]
            raise _UdfError(
                ErrorCode.UDF_NOT_LOADABLE,
                f"module {top} of the UDF directory failed to load: {type(error).__name__}: "
                f"{error}",
            ) from error
    # Submodules are searched in the package's __path__, which lies in the directory.
    return importlib.import_module(module_name) if module_name != top else loaded


def _file_of(module: ModuleType) -> Path | None:
    origin = getattr(module, "__file__", None)
    return Path(origin) if origin else None


def _callable(definition: str, target: object) -> Callable[..., object]:
    if not callable(target):
        raise _UdfError(ErrorCode.UDF_NOT_LOADABLE, f"{definition} is not callable")
    return cast(Callable[..., object], target)
