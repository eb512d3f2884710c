"""A UDF may only name code an administrator put in place: an entry point or the UDF directory."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from streamhouse_operator.handlers.admission import problem
from streamhouse_runtime.cli import main
from streamhouse_runtime.program import load_udfs
from streamhouse_runtime.sql.analyzer import analyze
from streamhouse_runtime.sql.errors import SqlValidationError
from streamhouse_runtime.sql.udf_sources import ENTRY_POINT_GROUP, installed_entry_points

pytestmark = pytest.mark.unit

DDL = "CREATE STREAM orders (order_id BIGINT, note VARCHAR) WITH (kafka_topic='orders');\n"


def _function(definition: str, returns: str = "INT") -> str:
    return f"CREATE FUNCTION sh(x VARCHAR) RETURNS {returns} LANGUAGE PYTHON AS '{definition}';\n"


def _query(definition: str) -> str:
    return DDL + _function(definition) + "CREATE STREAM out AS SELECT sh(note) AS n FROM orders;"


@pytest.fixture
def clean_modules() -> Iterator[None]:
    """Forget the UDF modules and entry points a test made, before and after it."""
    before = set(sys.modules)
    path = list(sys.path)
    installed_entry_points.cache_clear()
    yield
    for name in set(sys.modules) - before:
        del sys.modules[name]
    sys.path[:] = path
    installed_entry_points.cache_clear()


@pytest.mark.parametrize(
    "definition",
    [
        "os:system",
        "subprocess:run",
        "builtins:eval",
        "os.path:join",
        "importlib:import_module",
        "shutil:rmtree",
        "sqlglot:parse_one",  # site-packages
        "confluent_kafka:Producer",
        "streamhouse_runtime.app:run",  # the runtime's own code
        "__main__:main",
        "_private_udfs:f",
    ],
)
def test_standard_library_and_installed_code_are_refused_at_validation(definition: str) -> None:
    text = _query(definition)
    with pytest.raises(SqlValidationError) as raised:
        analyze(text)
    error = raised.value.errors[0]
    assert error.code.value == "E414", error.message
    offset = text.index(f"'{definition}'")
    assert (error.line, error.column) == (2, offset - len(DDL) + 1)
    assert ENTRY_POINT_GROUP in error.message


def test_admission_refuses_os_system() -> None:
    refused = problem({"sql": _query("os:system"), "kafka": {"bootstrapServers": "k:9092"}})
    assert refused is not None and "error[E414]" in refused and "standard library" in refused


def test_a_module_of_the_udf_directory_validates_and_loads_from_there_only(
    tmp_path: Path, clean_modules: None
) -> None:
    (tmp_path / "scoring_udfs.py").write_text(
        "import helpers_of_scoring\ndef score(x):\n    return helpers_of_scoring.size(x)\n"
    )
    (tmp_path / "helpers_of_scoring.py").write_text("def size(x):\n    return len(x)\n")
    program = analyze(_query("scoring_udfs:score"))
    functions = load_udfs(program, str(tmp_path))
    assert functions["sh"]("abcd") == 4
    assert Path(sys.modules["scoring_udfs"].__file__ or "").parent == tmp_path


def test_a_package_module_of_the_udf_directory_loads(tmp_path: Path, clean_modules: None) -> None:
    package = tmp_path / "acme_udf_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "text.py").write_text("def shout(x):\n    return len(x) * 10\n")
    functions = load_udfs(analyze(_query("acme_udf_pkg.text:shout")), str(tmp_path))
    assert functions["sh"]("ab") == 20


def test_a_directory_module_named_like_the_standard_library_is_refused(
    tmp_path: Path, clean_modules: None
) -> None:
    (tmp_path / "json.py").write_text("def loads(x):\n    return 1\n")
    with pytest.raises(SqlValidationError) as raised:
        analyze(_query("json:loads"))
    assert raised.value.errors[0].code.value == "E414"
    assert json.loads("2") == 2


def test_a_udf_directory_on_sys_path_does_not_shadow_the_standard_library(
    tmp_path: Path, clean_modules: None
) -> None:
    (tmp_path / "first_udfs.py").write_text("def f(x):\n    return 1\n")
    (tmp_path / "subprocess.py").write_text("def run(*a):\n    return 'shadowed'\n")
    load_udfs(analyze(_query("first_udfs:f")), str(tmp_path))
    assert sys.path.index(str(tmp_path)) > 0 and sys.path[-1] == str(tmp_path)
    with pytest.raises(SqlValidationError) as raised:
        load_udfs(analyze(_query("subprocess:run")), str(tmp_path))
    assert raised.value.errors[0].code.value == "E414"


def test_without_a_udf_directory_only_entry_points_load(clean_modules: None) -> None:
    program = analyze(_query("fraud_detection:detect_fraud"))
    with pytest.raises(SqlValidationError) as raised:
        load_udfs(program, "")
    error = raised.value.errors[0]
    assert error.code.value == "E415"
    assert "STREAMHOUSE_UDF_PATH" in error.message
    assert error.line == 2


def test_a_module_missing_from_the_directory_is_a_coded_error(
    tmp_path: Path, clean_modules: None
) -> None:
    with pytest.raises(SqlValidationError) as raised:
        load_udfs(analyze(_query("not_there_udfs:f")), str(tmp_path))
    assert raised.value.errors[0].code.value == "E415"
    (tmp_path / "half_udfs.py").write_text("x = 1\n")
    with pytest.raises(SqlValidationError) as raised:
        load_udfs(analyze(_query("half_udfs:f")), str(tmp_path))
    assert raised.value.errors[0].code.value == "E415"
    with pytest.raises(SqlValidationError) as raised:
        load_udfs(analyze(_query("half_udfs:x")), str(tmp_path))
    assert "not callable" in raised.value.errors[0].message


def _install_entry_point(site: Path) -> None:
    """A real distribution on sys.path declaring a `streamhouse.udfs` entry point."""
    (site / "acme_ep_udfs.py").write_text("def double(x):\n    return 2 * len(x)\n")
    info = site / "acme_ep_udfs-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-ep-udfs\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\ndouble_len = acme_ep_udfs:double\n"
    )
    sys.path.insert(0, str(site))
    installed_entry_points.cache_clear()  # the image's entry points are read once


def test_an_entry_point_of_the_image_validates_and_loads_by_name_or_value(
    tmp_path: Path, clean_modules: None
) -> None:
    _install_entry_point(tmp_path)
    for definition in ("double_len", "acme_ep_udfs:double"):
        functions = load_udfs(analyze(_query(definition)), "")
        assert functions["sh"]("abc") == 6
    # The same module named without its entry point is installed code, not a UDF.
    with pytest.raises(SqlValidationError) as raised:
        analyze(_query("acme_ep_udfs:other"))
    assert raised.value.errors[0].code.value == "E414"


def test_streamhouse_test_runs_a_query_with_a_udf_from_udf_path(
    tmp_path: Path, clean_modules: None, capsys: pytest.CaptureFixture[str]
) -> None:
    udfs = tmp_path / "udfs"
    udfs.mkdir()
    (udfs / "notes_udfs.py").write_text("def size(x):\n    return len(x)\n")
    sql = tmp_path / "query.sql"
    sql.write_text(_query("notes_udfs:size"))
    data = tmp_path / "input.json"
    data.write_text(json.dumps({"inputs": [{"topic": "orders", "key": "1", "value": {
        "order_id": 1, "note": "hello"}}]}))  # fmt: skip
    recorded = tmp_path / "out.json"
    args = ["test", "-s", str(sql), "-i", str(data), "--record", str(recorded)]
    assert main([*args, "--udf-path", str(udfs)]) == 0
    outputs = json.loads(recorded.read_text())["outputs"]
    assert [o["value"]["n"] for o in outputs] == [5]
    assert main([*args, "--udf-path", ""]) == 1
    assert "error[E415]" in capsys.readouterr().err


def test_admission_refuses_a_directory_udf_when_no_directory_is_mounted(
    tmp_path: Path, clean_modules: None
) -> None:
    sql = _query("fraud_detection:detect_fraud")
    without = problem({"sql": sql, "kafka": {"bootstrapServers": "k:9092"}})
    assert without is not None and without.startswith("spec.sql:2:62: error[E415]")
    mounted = problem(
        {
            "sql": sql,
            "kafka": {"bootstrapServers": "k:9092"},
            "udfs": {"configMapRef": {"name": "fraud-udfs"}},
        }
    )
    assert mounted is None
    _install_entry_point(tmp_path)
    assert problem({"sql": _query("double_len"), "kafka": {"bootstrapServers": "k:9092"}}) is None
