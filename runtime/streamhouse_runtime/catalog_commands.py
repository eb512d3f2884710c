"""`streamhouse catalog import`: a StreamSource manifest from a schema-registry subject (AVRO),
instead of writing the columns by hand."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import yaml

from streamhouse_runtime.io.registry import SchemaRegistry, SchemaRegistryError
from streamhouse_runtime.sql.catalog import SourceKind
from streamhouse_runtime.sql.declarations import declaration_from_avro, manifest
from streamhouse_runtime.sql.errors import SqlValidationError


def import_subject(args: argparse.Namespace) -> int:
    """Print the StreamSource manifest for the latest schema of a registry subject."""
    try:
        schema = SchemaRegistry(args.registry).latest(args.subject)
        sql = declaration_from_avro(
            schema,
            args.name,
            args.topic,
            SourceKind.TABLE if args.table else SourceKind.STREAM,
            key=args.key,
            timestamp=args.timestamp,
        )
    except SchemaRegistryError as error:
        print(f"error[E434]: subject {args.subject}: {error}", file=sys.stderr)
        return 1
    except SqlValidationError as invalid:
        for problem in invalid.errors:
            print(problem.render(args.subject), file=sys.stderr)
        return 1
    object_name = args.object_name or args.name.lower().replace("_", "-")
    document = manifest(object_name, sql, args.namespace)
    document["metadata"]["annotations"] = {
        "streamhouse.io/imported-from": f"{args.registry.split('@')[-1]} subject {args.subject}"
    }
    print(yaml.safe_dump(document, sort_keys=False, default_style=None), end="")
    return 0


def register(commands: Any) -> None:
    catalog = commands.add_parser("catalog", help="shared catalog (StreamSource) tools")
    actions = catalog.add_subparsers(dest="catalog_command", required=True, metavar="ACTION")
    importer = actions.add_parser("import", help="a StreamSource from a registry subject (AVRO)")
    importer.add_argument("--registry", required=True, help="schema registry URL")
    importer.add_argument("--subject", required=True, help="subject, e.g. orders-value")
    importer.add_argument("--name", required=True, help="SQL name of the stream or table")
    importer.add_argument("--topic", required=True, help="Kafka topic")
    importer.add_argument("--table", action="store_true", help="declare a TABLE (default STREAM)")
    importer.add_argument("--key", help="the key column (PRIMARY KEY of a table)")
    importer.add_argument("--timestamp", help="event-time column")
    importer.add_argument("--object-name", help="metadata.name (default: from --name)")
    importer.add_argument("--namespace", help="metadata.namespace")
    importer.set_defaults(handler=import_subject)
