"""Query execution: compiled expressions, operators and the stage executor."""

from streamhouse_runtime.exec.compiler import (
    EvaluationError,
    UdfRegistry,
    compile_predicate,
    compile_projection,
    compile_row_transform,
    compile_value,
    generated_source,
)

__all__ = [
    "EvaluationError",
    "UdfRegistry",
    "compile_predicate",
    "compile_projection",
    "compile_row_transform",
    "compile_value",
    "generated_source",
]
