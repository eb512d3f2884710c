"""`streamhouse queries list|get|create|delete|results`: the REST API from the command line.

The token is the current kubeconfig user's (`users[].user.token`, or `--token`); the API checks
that user's own RBAC. The API's address is `--api` or $STREAMHOUSE_API_URL (default
http://127.0.0.1:8443, where `kubectl port-forward svc/<release>-streamhouse-api 8443:80`
puts it). Human-readable tables by default; `-o json` or `-o yaml` print what the API answered.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import yaml

DEFAULT_API = "http://127.0.0.1:8443"
TIMEOUT_S = 30


class ClientError(Exception):
    pass


def _kubeconfig() -> dict[str, Any]:
    path = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or str(
        Path.home() / ".kube" / "config"
    )
    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as error:
        raise ClientError(f"cannot read kubeconfig {path}: {error.strerror}") from None
    return data if isinstance(data, dict) else {}


def _context(config: dict[str, Any]) -> dict[str, Any]:
    current = config.get("current-context")
    for entry in config.get("contexts") or []:
        if entry.get("name") == current:
            context = entry.get("context") or {}
            return context if isinstance(context, dict) else {}
    return {}


def credentials(args: argparse.Namespace) -> tuple[str, str]:
    """(token, namespace) from the flags, else the kubeconfig's current context."""
    token: str | None = args.token
    namespace: str | None = args.namespace
    if token is None or namespace is None:
        try:
            config = _kubeconfig()
        except ClientError:
            if token is None:
                raise
            config = {}
        context = _context(config)
        namespace = namespace or context.get("namespace") or "default"
        if token is None:
            for user in config.get("users") or []:
                if user.get("name") == context.get("user"):
                    token = (user.get("user") or {}).get("token")
    if not token:
        raise ClientError(
            "the current kubeconfig user has no token: pass --token "
            "(for a ServiceAccount: kubectl create token NAME)"
        )
    return token, namespace or "default"


def call(args: argparse.Namespace, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    token, _ = credentials(args)
    base = (args.api or os.environ.get("STREAMHOUSE_API_URL") or DEFAULT_API).rstrip("/")
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + "/api/v1" + path, data=data, method=method)
    request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        try:
            return error.code, json.loads(error.read() or b"null")
        except ValueError:
            return error.code, None
    except urllib.error.URLError as error:
        raise ClientError(f"cannot reach the API at {base}: {error.reason}") from None


def _fail(status: int, body: Any) -> ClientError:
    problem = (body or {}).get("error") if isinstance(body, dict) else None
    if not problem:
        return ClientError(f"HTTP {status}")
    return ClientError(problem.get("rendered") or f"error[{problem['code']}]: {problem['message']}")


def _print(args: argparse.Namespace, body: Any, table: list[list[str]] | None) -> None:
    if args.output == "json":
        print(json.dumps(body, indent=2))
    elif args.output == "yaml":
        print(yaml.safe_dump(body, sort_keys=False), end="")
    elif table is not None:
        widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
        for row in table:
            print("   ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


def _cell(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value)


def _query_rows(items: list[dict[str, Any]]) -> list[list[str]]:
    rows = [["NAME", "KIND", "STATE", "READY", "LAG", "INPUT/S", "OUTPUT/S"]]
    for q in items:
        figures = q.get("figures") or {}
        parallelism = (q.get("spec") or {}).get("parallelism", "")
        rows.append(
            [
                q["name"], _cell(q.get("kind")), _cell(q.get("lifecycleState")),
                f"{q.get('readyReplicas') or 0}/{parallelism}", _cell(figures.get("lag")),
                _cell(figures.get("inputRate")), _cell(figures.get("outputRate")),
            ]
        )  # fmt: skip
    return rows


def _list(args: argparse.Namespace) -> int:
    _, namespace = credentials(args)
    status, body = call(args, "GET", f"/queries?namespace={urllib.parse.quote(namespace)}")
    if status != 200:
        raise _fail(status, body)
    _print(args, body, _query_rows(body["items"]))
    return 0


def _get(args: argparse.Namespace) -> int:
    _, namespace = credentials(args)
    status, body = call(args, "GET", f"/queries/{namespace}/{args.name}")
    if status != 200:
        raise _fail(status, body)
    _print(args, body, _query_rows([body]))
    if args.output is None:
        for condition in body.get("conditions") or []:
            print(f"  {condition['type']}={condition['status']} {condition['reason']}: "
                  f"{condition.get('message', '')}")  # fmt: skip
    return 0


def _default_name(sql: str) -> str:
    """The sink's name as a StreamQuery name: `CREATE TABLE order_totals AS` -> order-totals."""
    found = re.findall(r"CREATE\s+(?:OR\s+REPLACE\s+)?(?:STREAM|TABLE)\s+([A-Za-z_][\w]*)\s+"
                       r"(?:WITH\s*\([^)]*\)\s*)?AS\b", sql, re.IGNORECASE)  # fmt: skip
    if not found:
        raise ClientError("no CREATE ... AS SELECT found to name the query: pass --name")
    return re.sub(r"[^a-z0-9-]", "-", found[-1].lower()).strip("-")


def _create(args: argparse.Namespace) -> int:
    _, namespace = credentials(args)
    sql = sys.stdin.read() if args.file == "-" else Path(args.file).read_text()
    body: dict[str, Any] = {
        "namespace": namespace,
        "name": args.name or _default_name(sql),
        "sql": sql,
        "parallelism": args.parallelism,
    }
    if args.bootstrap:
        body["kafka"] = {"bootstrapServers": args.bootstrap}
    status, reply = call(args, "POST", "/queries", body)
    if status != 201:
        error = _fail(status, reply)
        if status == 422 and args.file != "-":  # the SQL's position, as `validate` prints it
            problem = reply["error"]
            if problem.get("line"):
                error = ClientError(
                    f"{args.file}:{problem['line']}:{problem['column']}: "
                    f"error[{problem['code']}]: {problem['message']}"
                )
        raise error
    _print(args, reply, None)
    if args.output is None:
        print(f"streamquery {reply['name']} created in {namespace}")
    return 0


def _delete(args: argparse.Namespace) -> int:
    _, namespace = credentials(args)
    status, body = call(args, "DELETE", f"/queries/{namespace}/{args.name}")
    if status != 200:
        raise _fail(status, body)
    _print(args, body, None)
    if args.output is None:
        print(f"streamquery {args.name} deleted")
    return 0


def _results(args: argparse.Namespace) -> int:
    _, namespace = credentials(args)
    params: dict[str, str] = {"limit": str(args.limit)}
    if args.key is not None:
        try:
            json.loads(args.key)
            params["key"] = args.key
        except ValueError:
            params["key"] = json.dumps(args.key)  # a bare word is a string key
    rows: list[dict[str, Any]] = []
    pages: list[Any] = []
    while True:
        query = urllib.parse.urlencode(params)
        status, body = call(args, "GET", f"/queries/{namespace}/{args.name}/results?{query}")
        if status != 200:
            raise _fail(status, body)
        pages.append(body)
        rows.extend(body["rows"])
        token = body.get("continue")
        if not args.all or not token:
            break
        params["continue"] = token
    result = {"rows": rows, "continue": pages[-1].get("continue")}
    columns: list[str] = []
    for row in rows:
        columns.extend(c for c in row["row"] if c not in columns)
    windowed = any(row.get("window") for row in rows)
    table = [[c.upper() for c in columns] + (["WINDOW"] if windowed else [])]
    for row in rows:
        window = row.get("window")
        table.append(
            [_cell(row["row"].get(c)) for c in columns]
            + ([f"{window['start']}-{window['end']}" if window else ""] if windowed else [])
        )
    _print(args, result, table)
    if args.output is None and result["continue"]:
        print(f"(more rows: --all, or --limit above {args.limit})")
    return 0


def _run(args: argparse.Namespace) -> int:
    try:
        code: int = args.queries_handler(args)
        return code
    except ClientError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


def register(commands: Any) -> None:
    """`streamhouse queries ...`."""
    queries = commands.add_parser("queries", help="manage queries through the REST API")
    queries.set_defaults(handler=_run)
    actions = queries.add_subparsers(dest="action", required=True, metavar="ACTION")

    def action(name: str, handler: Any, text: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = actions.add_parser(name, help=text)
        parser.add_argument(
            "--api", help=f"API URL (default $STREAMHOUSE_API_URL or {DEFAULT_API})"
        )
        parser.add_argument("--token", help="bearer token (default: the kubeconfig user's)")
        parser.add_argument("-n", "--namespace", help="namespace (default: the kubeconfig's)")
        parser.add_argument("-o", "--output", choices=["json", "yaml"], help="output format")
        parser.set_defaults(queries_handler=handler)
        return parser

    action("list", _list, "list the namespace's queries")
    action("get", _get, "show one query").add_argument("name")
    create = action("create", _create, "create a query from a SQL file")
    create.add_argument("-f", "--file", required=True, help="SQL file ('-' for stdin)")
    create.add_argument("--name", help="query name (default: the sink's name)")
    create.add_argument("--parallelism", type=int, default=1)
    create.add_argument("--bootstrap", help="Kafka bootstrap servers (default: the API's)")
    action("delete", _delete, "delete a query").add_argument("name")
    results = action("results", _results, "rows of a TABLE query")
    results.add_argument("name")
    results.add_argument("--key", help='one key: a JSON value ("alice", ["a", 1]) or a word')
    results.add_argument("--limit", type=int, default=100)
    results.add_argument("--all", action="store_true", help="follow every page")
