"""SQL fuzz at admission: mutated example queries thrown at the webhook's validation function.

Admission's validation (`handlers.admission.problem`) is pure, so this runs in the unit tier
with the exact function the webhook calls. Every input must be answered within 2 s, either
with a coded `spec.sql:LINE:COL: error[CODE]` message or accepted with a plan that EXPLAIN
renders. Seeds are the example StreamQueries and every deployable query of the design file;
mutations drop, duplicate and swap tokens, add stray commas, nest deeply, grow literals to
huge sizes and splice in random unicode.
"""

from __future__ import annotations

import re
import time
from functools import cache
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamhouse_operator.handlers.admission import problem
from streamhouse_operator.models.streamquery import MAX_SQL_LENGTH
from streamhouse_runtime.plan.explain import explain_json, explain_text
from streamhouse_runtime.plan.planner import plan_statement
from streamhouse_runtime.program import load_single_query
from streamhouse_runtime.sql.analyzer import analyze
from streamhouse_runtime.sql.dialect import StreamHouse
from streamhouse_runtime.sql.query import StatementKind

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[3]
ANSWER_BUDGET_S = 2.0
CODED = re.compile(r"^spec\.sql:([1-9]\d*):([1-9]\d*): error\[E\d{3}\]: \S")
# A UDF directory is mounted, as the design's UDF query needs (spec.udfs).
SPEC = {"kafka": {"bootstrapServers": "kafka:9092"}, "udfs": {"configMapRef": {"name": "udfs"}}}


@cache
def seeds() -> tuple[str, ...]:
    """Deployable SQL texts: every example manifest, and each design query with its DDL."""
    texts = []
    for path in sorted((REPO / "examples").glob("*/streamquery.yaml")):
        sql = yaml.safe_load(path.read_text())["spec"]["sql"]
        catalog = path.parent / "catalog.yaml"
        if catalog.exists():  # the catalog declarations it reads, in front (as a pod runs it)
            declarations = [
                document["spec"]["sql"].strip().rstrip(";") + ";\n"
                for document in yaml.safe_load_all(catalog.read_text())
                if document and document.get("kind") == "StreamSource"
            ]
            sql = "".join(declarations) + sql
        texts.append(sql)
    program = analyze((REPO / "examples" / "sql" / "design.sql").read_text())
    ddl = [
        s.node.sql(dialect=StreamHouse)
        for s in program.statements
        if s.kind in (StatementKind.CREATE_SOURCE, StatementKind.CREATE_FUNCTION)
    ]
    for statement in program.persistent_queries:
        texts.append(";\n".join([*ddl, statement.node.sql(dialect=StreamHouse)]) + ";\n")
    return tuple(texts)


TOKEN = re.compile(r"'(?:[^']|'')*'|`[^`]*`|\"[^\"]*\"|\w+|\s+|.", re.DOTALL)
HUGE_LITERALS = ("9" * 5_000, "'" + "x" * 100_000 + "'", "1e999999", "0." + "0" * 4_000 + "1")
DEEP = (
    lambda part, n: "(" * n + part + ")" * n,
    lambda part, n: "NOT " * n + part,
    lambda part, n: "CASE WHEN TRUE THEN " * n + part + " END" * n,
    lambda part, n: " + ".join([part] * n),
    lambda part, n: "ARRAY[" * n + part + "]" * n,
)


@st.composite
def mutated_sql(draw: st.DrawFn) -> str:
    tokens = TOKEN.findall(draw(st.sampled_from(seeds())))
    for _ in range(draw(st.integers(1, 4))):
        if not tokens:
            tokens = ["SELECT"]
        index = draw(st.integers(0, len(tokens) - 1))
        kind = draw(st.sampled_from(
            ["drop", "duplicate", "swap", "comma", "deep", "huge", "unicode", "drop-span"]
        ))  # fmt: skip
        if kind == "drop":
            del tokens[index]
        elif kind == "drop-span":
            del tokens[index : index + draw(st.integers(2, 30))]
        elif kind == "duplicate":
            tokens.insert(index, tokens[index])
        elif kind == "swap" and index + 1 < len(tokens):
            tokens[index], tokens[index + 1] = tokens[index + 1], tokens[index]
        elif kind == "comma":
            tokens.insert(index, draw(st.sampled_from([",", ", ,", ",,", " , "])))
        elif kind == "deep":
            shape = draw(st.sampled_from(DEEP))
            tokens[index] = shape(tokens[index], draw(st.integers(2, 400)))
        elif kind == "huge":
            tokens[index] = draw(st.sampled_from(HUGE_LITERALS))
        elif kind == "unicode":
            tokens.insert(index, draw(st.text(min_size=1, max_size=20)))
    text = "".join(tokens)
    return text[:MAX_SQL_LENGTH] if text.strip() else "SELECT"


def _check_answer(sql: str) -> str:
    """Admission's answer for `sql`, checked; returns 'refused' or 'accepted'."""
    started = time.perf_counter()
    answer = problem({"sql": sql, **SPEC})
    elapsed = time.perf_counter() - started
    assert elapsed < ANSWER_BUDGET_S, f"admission took {elapsed:.2f}s for {sql[:200]!r}"
    if answer is not None:
        coded = CODED.match(answer)
        assert coded is not None, f"uncoded answer {answer[:300]!r} for {sql[:200]!r}"
        line, column = int(coded.group(1)), int(coded.group(2))
        # Lines end at \r\n, \n or a lone \r, as the tokenizer counts them.
        lines = re.split(r"\r\n|\r|\n", sql)
        assert line <= len(lines), answer
        assert column <= len(lines[line - 1]) + 1, answer
        return "refused"
    _, statement = load_single_query(sql)
    plan = plan_statement(statement)
    assert explain_text(plan).strip()
    assert explain_json(plan)
    return "accepted"


def test_every_seed_is_accepted_or_refused_only_as_not_executable_yet() -> None:
    assert len(seeds()) >= 10
    answers = [problem({"sql": sql, **SPEC}) for sql in seeds()]
    assert all(answer is None or "error[E403]" in answer for answer in answers), answers
    assert [_check_answer(sql) for sql in seeds()].count("accepted") >= 8


@settings(
    max_examples=1000,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(mutated_sql())
def _fuzz(outcomes: dict[str, int], sql: str) -> None:
    outcomes[_check_answer(sql)] += 1


def test_mutated_sql_gets_a_coded_error_or_an_explainable_plan() -> None:
    outcomes = {"refused": 0, "accepted": 0}
    _fuzz(outcomes)
    # Both answers occur: some mutations keep a query valid (a duplicated space, a dropped
    # comment), most break it.
    assert outcomes["refused"] > 50, outcomes
    assert outcomes["accepted"] > 0, outcomes
