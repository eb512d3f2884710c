"""The `streamhouse` command.

Runtime subcommands are defined here. Other packages add theirs through the
`streamhouse.cli` entry-point group (a callable that receives the subparsers object), so the
runtime never imports the operator.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points

from streamhouse_runtime import __version__, catalog_commands, sql_commands

Handler = Callable[[argparse.Namespace], int]


def _version(_: argparse.Namespace) -> int:
    print(f"streamhouse {__version__}")
    return 0


def _run(args: argparse.Namespace) -> int:
    from streamhouse_runtime.app import run
    from streamhouse_runtime.config import load_config

    config = load_config(args.config)
    if args.query:
        config.query_file = args.query
    if args.compatibility:
        config.compatibility = args.compatibility
    return run(config)


def _test(args: argparse.Namespace) -> int:
    from streamhouse_runtime.testing.runner import run_test

    return run_test(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="streamhouse", description="Streaming SQL on Kafka and Kubernetes."
    )
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    version = commands.add_parser("version", help="print the version")
    version.set_defaults(handler=_version)
    sql_commands.register(commands)
    catalog_commands.register(commands)
    test = commands.add_parser("test", help="run statements over in-memory topics, compare")
    test.add_argument("-s", "--statements", required=True, help="SQL file or StreamQuery YAML")
    test.add_argument("-i", "--input", required=True, help="input records (JSON)")
    test.add_argument("-o", "--output", help="expected output records (JSON)")
    test.add_argument("--record", help="write the produced records to this file")
    test.add_argument(
        "--udf-path",
        default=os.environ.get("STREAMHOUSE_UDF_PATH", ""),
        help="UDF directory (default: $STREAMHOUSE_UDF_PATH)",
    )
    test.add_argument(
        "-c", "--catalog", action="append", metavar="PATH", help="StreamSource manifests"
    )
    sql_commands.add_compatibility_option(test)
    test.set_defaults(handler=_test)
    run = commands.add_parser("run", help="run one query (what every query pod runs)")
    run.add_argument("--query", help="SQL file (default: $STREAMHOUSE_QUERY_FILE)")
    run.add_argument("--config", help="YAML/JSON settings file; STREAMHOUSE_* env wins")
    sql_commands.add_compatibility_option(run)
    run.set_defaults(handler=_run)
    for entry in sorted(entry_points(group="streamhouse.cli"), key=lambda e: e.name):
        entry.load()(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    handler: Handler = args.handler
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
