"""Subcommands the operator adds to `streamhouse` (entry-point group `streamhouse.cli`)."""

from __future__ import annotations

import argparse
from typing import Any


def _print_crd(_: argparse.Namespace) -> int:
    from streamhouse_operator.crd import render

    print(render(), end="")
    return 0


def register(commands: Any) -> None:
    """Add the operator's subcommands to the `streamhouse` parser."""
    crd = commands.add_parser("crd", help="print the StreamQuery CustomResourceDefinition")
    crd.set_defaults(handler=_print_crd)
