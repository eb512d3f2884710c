"""Compatibility modes: whose conventions a query follows where engines differ.

`default` is StreamHouse's own behaviour. `ksqldb` follows ksqlDB, so that a query pasted from
ksqlDB writes the records its consumers already read: unquoted names upper-cased, generated
`KSQL_COL_n` names, key columns only in the key, the largest contributing input timestamp on
aggregate results, Kafka Streams' windowed key layout (README, "Coming from ksqlDB").
"""

from __future__ import annotations

from enum import StrEnum

from sqlglot import exp


class Compatibility(StrEnum):
    DEFAULT = "default"
    KSQLDB = "ksqldb"


def parse_compatibility(text: str | None) -> Compatibility:
    """The mode named by `text` (case-insensitive; empty is the default); ValueError otherwise."""
    name = (text or "").strip().lower() or Compatibility.DEFAULT.value
    try:
        return Compatibility(name)
    except ValueError:
        known = ", ".join(c.value for c in Compatibility)
        raise ValueError(f"unknown compatibility mode {text!r} (one of: {known})") from None


def upper_case_unquoted(statements: list[exp.Expr]) -> None:
    """ksqlDB's identifier rule: an unquoted name is upper-cased, a quoted one keeps its
    spelling. Applied to the parsed statements before analysis, so every name the query
    writes (columns, the default sink topic, generated key names) follows it."""
    for statement in statements:
        for identifier in statement.find_all(exp.Identifier):
            if not identifier.args.get("quoted") and isinstance(identifier.this, str):
                identifier.set("this", identifier.this.upper())


def ksqldb_function_rules(statements: list[exp.Expr]) -> None:
    """ksqlDB's function conventions where they differ from StreamHouse's (Flink's), written
    as the equivalent default-mode expressions before analysis:

    - `REGEXP_EXTRACT(pattern, string [, group])` and `REGEXP_EXTRACT_ALL` take the pattern
      first;
    - `GREATEST` and `LEAST` ignore NULL arguments (NULL only when all are): each argument
      becomes `COALESCE(it, the others...)`;
    - `ARRAY_CONTAINS` of a NULL array (or a NULL value) is FALSE, never NULL;
    - `SUM` starts at 0 and skips NULLs, so a group of only NULLs sums to 0, not NULL:
      `SUM(x)` becomes `SUM(COALESCE(x, 0))`."""
    for statement in statements:
        for extract in list(statement.find_all(exp.RegexpExtract)):
            pattern, string = extract.this, extract.expression
            extract.set("this", string)
            extract.set("expression", pattern)
        for call in list(statement.find_all(exp.Anonymous)):
            arguments = call.expressions
            if call.name.upper() == "REGEXP_EXTRACT_ALL" and len(arguments) >= 2:
                call.set("expressions", [arguments[1], arguments[0], *arguments[2:]])
        for extreme in list(statement.find_all(exp.Greatest, exp.Least)):
            arguments = [extreme.this, *extreme.expressions]
            if len(arguments) < 2:
                continue
            coalesced = [
                exp.Coalesce(
                    this=argument.copy(),
                    expressions=[a.copy() for a in arguments if a is not argument],
                )
                for argument in arguments
            ]
            extreme.set("this", coalesced[0])
            extreme.set("expressions", coalesced[1:])
        for total in list(statement.find_all(exp.Sum)):
            if not isinstance(total.this, exp.Distinct):
                zero = exp.Literal.number(0)
                total.set("this", exp.Coalesce(this=total.this, expressions=[zero]))
        for contains in list(statement.find_all(exp.ArrayContains)):
            contains.replace(exp.Coalesce(this=contains.copy(), expressions=[exp.false()]))


# Functions whose first argument is a time unit written as a bare word (ksqlDB's and Flink's
# `TIMESTAMPADD(SECONDS, 10, ts)`): read as the unit's name, not as a column.
_UNIT_FIRST = frozenset(("TIMESTAMPADD", "TIMESTAMPSUB", "DATEADD", "DATESUB"))


def time_unit_arguments(statements: list[exp.Expr]) -> None:
    """`TIMESTAMPADD(SECONDS, n, ts)` and the like: the bare unit becomes the string 'SECONDS'
    (in every mode, before names are resolved)."""
    for statement in statements:
        for call in list(statement.find_all(exp.Anonymous)):
            arguments = call.expressions
            if call.name.upper() in _UNIT_FIRST and arguments:
                unit = arguments[0]
                if isinstance(unit, exp.Column) and not unit.table:
                    text = exp.Literal.string(unit.name.upper())
                    call.set("expressions", [text, *arguments[1:]])
