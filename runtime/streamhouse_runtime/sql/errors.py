"""Errors a user sees for their SQL: a stable code, a message and the line:column of the token.

Codes are stable API: tests, docs and users' scripts match on them. Never renumber; retire a
code by leaving it unused.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ErrorCode(StrEnum):
    # Input and syntax
    SYNTAX = "E001"
    INPUT_TOO_LARGE = "E002"
    NESTING_TOO_DEEP = "E003"
    INVALID_CHARACTERS = "E004"
    EMPTY_INPUT = "E005"
    EMPTY_IDENTIFIER = "E006"
    # Names
    UNKNOWN_SOURCE = "E101"
    UNKNOWN_COLUMN = "E102"
    UNKNOWN_FUNCTION = "E103"
    AMBIGUOUS_COLUMN = "E104"
    DUPLICATE_SOURCE = "E105"
    DUPLICATE_COLUMN = "E106"
    UNKNOWN_PROPERTY = "E107"
    MISSING_PROPERTY = "E108"
    INVALID_PROPERTY = "E109"
    DUPLICATE_ALIAS = "E110"
    # Types
    TYPE_MISMATCH = "E201"
    WRONG_ARGUMENT_COUNT = "E202"
    WRONG_ARGUMENT_TYPE = "E203"
    INVALID_LITERAL = "E204"
    INVALID_REGEX = "E205"
    # Aggregation and windows
    NON_GROUPED_COLUMN = "E301"
    AGGREGATE_IN_WHERE = "E302"
    HAVING_WITHOUT_GROUP_BY = "E303"
    WINDOW_OVER_TABLE = "E304"
    WINDOW_OUTSIDE_GROUP_BY = "E305"
    NESTED_AGGREGATE = "E306"
    MULTIPLE_WINDOWS = "E307"
    # Joins, pattern matching, statement shape
    JOIN_WITHOUT_WITHIN = "E401"
    JOIN_WITHOUT_KEY_EQUALITY = "E402"
    UNSUPPORTED = "E403"
    UNSUPPORTED_LANGUAGE = "E404"
    NO_PERSISTENT_QUERY = "E405"
    MULTIPLE_PERSISTENT_QUERIES = "E406"
    INVALID_PATTERN = "E407"
    TIMESTAMP_REQUIRED = "E408"
    # Kafka topics and WITH settings
    INVALID_TOPIC_NAME = "E410"
    INTERNAL_TOPIC = "E411"
    SINK_IS_SOURCE = "E412"
    OUT_OF_RANGE = "E413"
    # User-defined function code
    UDF_CODE_NOT_ALLOWED = "E414"
    UDF_NOT_LOADABLE = "E415"
    # Joins
    NOT_COPARTITIONED = "E416"
    # Operator policy: StreamQuery fields an author may not set (field path, not line:column)
    KAFKA_OVERRIDE_LOADS_CODE = "E420"
    KAFKA_OVERRIDE_WEAKENS_DELIVERY = "E421"
    IMAGE_NOT_ALLOWED = "E422"
    SERVICE_ACCOUNT_NOT_ALLOWED = "E423"

    # The shared catalog (StreamSource declarations)
    NOT_A_DECLARATION = "E430"
    DUPLICATE_DECLARATION = "E431"
    DECLARATION_IN_USE = "E432"
    CATALOG_INCOMPATIBLE = "E433"
    SCHEMA_IMPORT = "E434"


@dataclass(frozen=True)
class SqlError:
    """One problem in a SQL text, at a 1-based line and column."""

    code: ErrorCode
    message: str
    line: int
    column: int

    def render(self, filename: str = "<sql>") -> str:
        """`FILE:LINE:COL: error[CODE]: message`, the format of `streamhouse validate`."""
        return f"{filename}:{self.line}:{self.column}: error[{self.code.value}]: {self.message}"

    def to_dict(self) -> dict[str, object]:
        return {
            "code": self.code.value,
            "message": self.message,
            "line": self.line,
            "column": self.column,
        }


class SqlValidationError(Exception):
    """Raised with every problem found; the first one is the headline."""

    def __init__(self, errors: list[SqlError]) -> None:
        if not errors:
            raise ValueError("SqlValidationError needs at least one error")
        self.errors = errors
        first = errors[0]
        super().__init__(f"{first.line}:{first.column}: error[{first.code.value}]: {first.message}")


def suggestion(name: str, candidates: list[str]) -> str:
    """A ' (did you mean X?)' suffix when a candidate is close enough, else ''."""
    import difflib

    lowered = {candidate.lower(): candidate for candidate in candidates}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)
    return f" (did you mean '{lowered[close[0]]}'?)" if close else ""
