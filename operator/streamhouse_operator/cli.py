"""Subcommands the operator adds to `streamhouse` (entry-point group `streamhouse.cli`)."""

from __future__ import annotations

import argparse
from typing import Any


def _print_crd(args: argparse.Namespace) -> int:
    from streamhouse_operator.crd import render, render_catalog

    print(render_catalog() if args.catalog else render(), end="")
    return 0


def _run_operator(args: argparse.Namespace) -> int:
    import kopf

    import streamhouse_operator.main  # noqa: F401  (registers the handlers)

    namespaces: list[str] = args.namespace or []
    kopf.run(
        standalone=True,
        clusterwide=not namespaces,
        namespaces=namespaces,
        liveness_endpoint=args.liveness,
    )
    return 0


def _run_api(args: argparse.Namespace) -> int:
    from streamhouse_operator.api.server import run

    run(args.address, args.port, args.default_bootstrap)
    return 0


def register(commands: Any) -> None:
    """Add the operator's subcommands to the `streamhouse` parser."""
    crd = commands.add_parser("crd", help="print the StreamQuery CustomResourceDefinition")
    crd.add_argument(
        "--catalog", action="store_true", help="the StreamSource (shared catalog) CRD instead"
    )
    crd.set_defaults(handler=_print_crd)
    operator = commands.add_parser("operator", help="run the StreamQuery operator (kopf)")
    operator.add_argument(
        "--namespace", action="append", help="watch only this namespace (repeatable)"
    )
    operator.add_argument(
        "--liveness", help="serve kopf's liveness probe here, e.g. http://0.0.0.0:8080/healthz"
    )
    operator.set_defaults(handler=_run_operator)
    api = commands.add_parser("api", help="serve the REST API and web console")
    api.add_argument("--address", default="127.0.0.1", help="listen address (0.0.0.0 in a pod)")
    api.add_argument("--port", type=int, default=8443, help="listen port")
    api.add_argument(
        "--default-bootstrap",
        default=None,
        help="Kafka bootstrap servers for created queries that name none",
    )
    api.set_defaults(handler=_run_api)
    from streamhouse_operator.api import client

    client.register(commands)
