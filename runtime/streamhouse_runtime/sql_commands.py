"""`streamhouse validate` and `streamhouse explain`: the SQL front end on the command line."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from streamhouse_runtime.plan.explain import explain_json, explain_text
from streamhouse_runtime.plan.nodes import Sink
from streamhouse_runtime.plan.planner import plan_statement
from streamhouse_runtime.plan.stages import stage_graph
from streamhouse_runtime.program import load_single_query
from streamhouse_runtime.sql.analyzer import analyze
from streamhouse_runtime.sql.catalog import Source
from streamhouse_runtime.sql.compatibility import Compatibility, parse_compatibility
from streamhouse_runtime.sql.declarations import (
    CatalogFileError,
    catalog_of,
    load_catalog,
)
from streamhouse_runtime.sql.errors import ErrorCode, SqlError, SqlValidationError
from streamhouse_runtime.sql.query import Program


def read_sql(path: str) -> str:
    """File contents as text; invalid UTF-8 becomes U+FFFD, which validation reports."""
    data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    return data.decode("utf-8", errors="replace")


def _load(
    path: str,
    shared: dict[str, Source] | None = None,
    deployable: bool = False,
    compatibility: str | None = None,
) -> tuple[Program | None, list[SqlError]]:
    """The analyzed file, or its errors (`shared`: the catalog names resolve against).
    `deployable`: it must also be what a StreamQuery runs (exactly one persistent query the
    runtime executes), checked by the same function as admission, reconcile and `run`.
    `compatibility`: `--compatibility`; when not given, a manifest's spec.compatibility."""
    try:
        text = read_sql(path)
    except OSError as error:
        return None, [SqlError(ErrorCode.EMPTY_INPUT, f"cannot read file: {error.strerror}", 1, 1)]
    if path.endswith((".yaml", ".yml")):
        manifest = _manifest_spec(text)
        if manifest is None:
            return None, []  # a StreamSource (checked with the catalog) or another kind
        text = str(manifest["sql"])
        if compatibility is None and manifest.get("compatibility") is not None:
            compatibility = str(manifest["compatibility"])
    try:
        mode = parse_compatibility(compatibility)
    except ValueError as error:
        return None, [SqlError(ErrorCode.INVALID_PROPERTY, str(error), 1, 1)]
    try:
        program = (
            load_single_query(text, shared, compatibility=mode)[0]
            if deployable
            else analyze(text, shared, mode)
        )
        return program, []
    except SqlValidationError as invalid:
        return None, invalid.errors


def _manifest_spec(text: str) -> dict[str, Any] | None:
    """The spec of a StreamQuery manifest that has spec.sql; None for StreamSource and other
    manifests."""
    import yaml

    manifest = yaml.safe_load(text)
    if not isinstance(manifest, dict) or manifest.get("kind") != "StreamQuery":
        return None
    spec = manifest.get("spec") or {}
    return spec if isinstance(spec, dict) and spec.get("sql") is not None else None


def add_compatibility_option(parser: argparse.ArgumentParser) -> None:
    """`--compatibility MODE`, shared by validate, explain, test and run."""
    parser.add_argument(
        "--compatibility",
        choices=[c.value for c in Compatibility],
        default=None,
        help="whose conventions the query follows (default: StreamHouse's; a manifest's "
        "spec.compatibility when not given)",
    )


def shared_catalog(paths: list[str] | None) -> dict[str, Source] | None:
    """The catalog of the StreamSource manifests in `-c` files or folders (raises
    CatalogFileError or SqlValidationError for an invalid or duplicate declaration)."""
    if not paths:
        return None
    return catalog_of(load_catalog(Path(p) for p in paths))


def validate(args: argparse.Namespace) -> int:
    """Exit 0 when every file is valid; else one `FILE:LINE:COL: error[CODE]: msg` per problem.

    By default a file must be deployable as one StreamQuery (admission's answer); with
    `--library` each statement is only checked on its own (a file of many queries).
    `-c` adds the StreamSource manifests of a file or folder: they are validated too, and the
    files' SQL resolves names against them."""
    if not args.files and not args.catalog:
        print("streamhouse validate: name SQL files, manifests or -c PATH", file=sys.stderr)
        return 2
    try:
        shared = shared_catalog(args.catalog)
    except CatalogFileError as invalid:
        for error in invalid.errors:
            print(error.render(f"{invalid.file} ({invalid.name}) spec.sql"), file=sys.stderr)
        return 1
    except SqlValidationError as invalid:
        print(f"{args.catalog}: " + invalid.errors[0].render("catalog"), file=sys.stderr)
        return 1
    failed = False
    for path in args.files:
        _, errors = _load(
            path, shared, deployable=not args.library, compatibility=args.compatibility
        )
        for error in errors:
            print(error.render(path), file=sys.stderr)
        failed = failed or bool(errors)
    return 1 if failed else 0


def explain(args: argparse.Namespace) -> int:
    """Print the logical plan of every query in the file (text, or JSON with --json)."""
    program, errors = _load(args.file, compatibility=args.compatibility)
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
                    "stages": stage_graph(plan).to_json() if isinstance(plan, Sink) else None,
                }
            )
        else:
            title = f"{statement.kind.value} {statement.name or ''}".strip()
            print(f"-- {title} (line {statement.line})")
            print(explain_text(plan))
            if isinstance(plan, Sink):
                print(stage_graph(plan).render())
    if args.json:
        print(json.dumps(documents, indent=2))
    return 0


def register(commands: Any) -> None:
    check = commands.add_parser("validate", help="check SQL files; exit 1 on any problem")
    check.add_argument(
        "files", nargs="*", metavar="FILE", help="SQL files or StreamQuery manifests ('-': stdin)"
    )
    check.add_argument(
        "--library",
        action="store_true",
        help="check each statement on its own; the file need not be one deployable query",
    )
    check.add_argument(
        "-c",
        "--catalog",
        action="append",
        metavar="PATH",
        help="StreamSource manifests (a file or a folder; repeatable)",
    )
    add_compatibility_option(check)
    check.set_defaults(handler=validate)
    show = commands.add_parser("explain", help="print the logical plan of each query")
    show.add_argument("file", metavar="FILE", help="a SQL file ('-' for stdin)")
    show.add_argument("--json", action="store_true", help="print the plan as JSON")
    add_compatibility_option(show)
    show.set_defaults(handler=explain)
