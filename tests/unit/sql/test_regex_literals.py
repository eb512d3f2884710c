"""A literal pattern RE2 cannot run is refused at validation, at the pattern's position."""

from __future__ import annotations

import pytest

from streamhouse_runtime.sql.analyzer import analyze
from streamhouse_runtime.sql.errors import ErrorCode, SqlValidationError

pytestmark = pytest.mark.unit

DDL = "CREATE STREAM s (msg VARCHAR) WITH (kafka_topic = 's', value_format = 'JSON');\n"


def test_back_reference_is_refused_with_its_position() -> None:
    sql = DDL + "CREATE STREAM o AS SELECT REGEXP_EXTRACT(msg, '(a)\\1') AS x FROM s;"
    with pytest.raises(SqlValidationError) as caught:
        analyze(sql)
    error = caught.value.errors[0]
    assert error.code is ErrorCode.INVALID_REGEX
    assert (error.line, error.column) == (2, sql.splitlines()[1].index("'(a)") + 1)
    assert "RE2" in error.message


def test_accepted_pattern_validates() -> None:
    sql = DDL + "CREATE STREAM o AS SELECT REGEXP_REPLACE(msg, '(\\d+)', '#') AS x FROM s;"
    assert analyze(sql).persistent_queries
