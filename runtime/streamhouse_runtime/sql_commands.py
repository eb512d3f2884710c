"""`streamhouse validate` and `streamhouse explain`: the SQL front end on the command line."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from streamhouse_runtime.plan.explain import explain_json, explain_text
from streamhouse_runtime.plan.planner import plan_statement
from streamhouse_runtime.program import load_single_query
from streamhouse_runtime.sql.analyzer import analyze
from streamhouse_runtime.sql.errors import ErrorCode, SqlError, SqlValidationError
from streamhouse_runtime.sql.query import Program


def read_sql(path: str) -> str:
    """File contents as text; invalid UTF-8 becomes U+FFFD, which validation reports."""
    data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    return data.decode("utf-8", errors="replace")


def _load(path: str, deployable: bool = False) -> tuple[Program | None, list[SqlError]]:
    """The analyzed file, or its errors. `deployable`: it must also be what a StreamQuery
    runs (exactly one persistent query the runtime executes), checked by the same function
    as admission, reconcile and `streamhouse run`."""
    try:
        text = read_sql(path)
    except OSError as error:
        return None, [SqlError(ErrorCode.EMPTY_INPUT, f"cannot read file: {error.strerror}", 1, 1)]
    try:
        return (load_single_query(text)[0] if deployable else analyze(text)), []
    except SqlValidationError as invalid:
        return None, invalid.errors


def validate(args: argparse.Namespace) -> int:
    """Exit 0 when every file is valid; else one `FILE:LINE:COL: error[CODE]: msg` per problem.

    By default a file must be deployable as one StreamQuery (admission's answer); with
    `--library` each statement is only checked on its own (a file of many queries)."""
    failed = False
    for path in args.files:
        _, errors = _load(path, deployable=not args.library)
        for error in errors:
            print(error.render(path), file=sys.stderr)
        failed = failed or bool(errors)
    return 1 if failed else 0


def explain(args: argparse.Namespace) -> int:
    """Print the logical plan of every query in the file (text, or JSON with --json)."""
    program, errors = _load(args.file)
    if program is None:
        for error in errors:
            print(error.render(args.file), file=sys.stderr)
        return 1
    documents: list[dict[str, Any]] = []
    for statement in program.statements:
        if statement.query is None:
            continue
        plan = plan_statement(statement)
        if args.json:
            documents.append(
                {
                    "statement": statement.kind.value,
                    "name": statement.name,
                    "line": statement.line,
                    "plan": explain_json(plan),
                }
            )
        else:
            title = f"{statement.kind.value} {statement.name or ''}".strip()
            print(f"-- {title} (line {statement.line})")
            print(explain_text(plan))
    if args.json:
        print(json.dumps(documents, indent=2))
    return 0


def register(commands: Any) -> None:
    check = commands.add_parser("validate", help="check SQL files; exit 1 on any problem")
    check.add_argument("files", nargs="+", metavar="FILE", help="SQL files ('-' for stdin)")
    check.add_argument(
        "--library",
        action="store_true",
        help="check each statement on its own; the file need not be one deployable query",
    )
    check.set_defaults(handler=validate)
    show = commands.add_parser("explain", help="print the logical plan of each query")
    show.add_argument("file", metavar="FILE", help="a SQL file ('-' for stdin)")
    show.add_argument("--json", action="store_true", help="print the plan as JSON")
    show.set_defaults(handler=explain)
