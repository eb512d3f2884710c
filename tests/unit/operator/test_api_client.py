"""`streamhouse queries`: the token and namespace come from the kubeconfig's current context,
and a query is named after its sink."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import yaml

from streamhouse_operator.api.client import ClientError, _default_name, credentials

pytestmark = pytest.mark.unit


def _args(**overrides: object) -> argparse.Namespace:
    return argparse.Namespace(**{"token": None, "namespace": None, **overrides})


def test_credentials_follow_the_current_context(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = {
        "current-context": "b",
        "contexts": [
            {"name": "a", "context": {"user": "ua", "namespace": "na"}},
            {"name": "b", "context": {"user": "ub", "namespace": "shop"}},
        ],
        "users": [{"name": "ua", "user": {"token": "ta"}}, {"name": "ub", "user": {"token": "tb"}}],
    }
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(config))
    monkeypatch.setenv("KUBECONFIG", str(path))
    assert credentials(_args()) == ("tb", "shop")
    assert credentials(_args(namespace="other")) == ("tb", "other")
    assert credentials(_args(token="flag")) == ("flag", "shop")
    config["users"][1]["user"] = {"client-certificate-data": "..."}
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ClientError, match="no token"):
        credentials(_args())


def test_queries_are_named_after_their_sink() -> None:
    ddl = "CREATE STREAM orders (id INT) WITH (kafka_topic='o', value_format='JSON');\n"
    assert _default_name(ddl + "CREATE TABLE Order_Totals AS SELECT 1;") == "order-totals"
    assert _default_name(ddl + "CREATE STREAM big WITH (kafka_topic='b') AS SELECT 1;") == "big"
    with pytest.raises(ClientError):
        _default_name(ddl)
