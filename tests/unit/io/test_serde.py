"""The four formats' serdes, without services: coercion, errors, byte layouts, round trips."""

from __future__ import annotations

import base64
import io
import json
import re
from decimal import Decimal
from struct import pack
from typing import Any

import fastavro
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamhouse_runtime.io import (
    DeserializationError,
    SchemaRegistry,
    SchemaRegistryError,
    SerializationError,
    avro_schema,
    key_serde,
    timestamp_parser,
    value_serde,
)
from streamhouse_runtime.sql.catalog import Column, Format
from streamhouse_runtime.sql.types import (
    BIGINT,
    BOOLEAN,
    BYTES,
    DATE,
    DOUBLE,
    INTEGER,
    TIME,
    TIMESTAMP,
    VARCHAR,
    array,
    decimal,
    map_of,
    struct,
)

pytestmark = pytest.mark.unit

ORDERS = [
    Column("order_id", BIGINT),
    Column("customer_id", VARCHAR),
    Column("amount", decimal(10, 2)),
    Column("status", VARCHAR),
    Column("created_at", TIMESTAMP),
]
ORDER = (
    b'{"order_id": 123, "customer_id": "c-17", "amount": 1234.56, "status": "placed", '
    b'"created_at": 1700000000000}'
)
NOV_14_2023 = 1_700_000_000_000  # 2023-11-14T22:13:20Z


def decode(columns: list[Column], record: object, **options: Any) -> dict[str, object]:
    row = value_serde(Format.JSON, columns, **options).decode(json.dumps(record).encode())
    assert row is not None
    return row


# --- JSON values ---------------------------------------------------------------------------


def test_json_decode_keeps_native_types_and_reads_decimal_exactly() -> None:
    row = value_serde(Format.JSON, ORDERS).decode(ORDER)
    assert row == {
        "order_id": 123,
        "customer_id": "c-17",
        "amount": Decimal("1234.56"),
        "status": "placed",
        "created_at": NOV_14_2023,
    }
    assert row is not None and str(row["amount"]) == "1234.56"


def test_json_null_and_tombstone() -> None:
    serde = value_serde(Format.JSON, ORDERS)
    assert serde.decode(None) is None
    assert serde.encode(None) is None
    assert decode(ORDERS, {"order_id": None}) == dict.fromkeys(
        ["order_id", "customer_id", "amount", "status", "created_at"]
    )


@pytest.mark.parametrize(
    ("column", "given", "expected"),
    [
        (Column("n", BIGINT), "42", 42),
        (Column("n", BIGINT), " -7 ", -7),
        (Column("n", BIGINT), 1e3, 1000),
        (Column("n", INTEGER), "2147483647", 2_147_483_647),
        (Column("d", DOUBLE), 3, 3.0),
        (Column("d", DOUBLE), "2.5", 2.5),
        (Column("p", decimal(10, 2)), "0.10", Decimal("0.10")),
        (Column("p", decimal(10, 2)), 7, Decimal("7.00")),
        (Column("p", decimal(10, 2)), 1.005, Decimal("1.01")),  # half up, from the literal
        (Column("p", decimal(10, 2)), 2.5, Decimal("2.50")),
        (Column("p", decimal(5, 0)), -0.0, Decimal("0")),
        (Column("b", BOOLEAN), "TRUE", True),
        (Column("s", VARCHAR), 12, "12"),
        (Column("s", VARCHAR), True, "true"),
        (Column("x", BYTES), base64.b64encode(b"\x00\xff").decode(), b"\x00\xff"),
        (Column("t", TIMESTAMP), "2023-11-14T22:13:20Z", NOV_14_2023),
        (Column("t", TIMESTAMP), "2023-11-14T23:13:20.250+01:00", NOV_14_2023 + 250),
        (Column("t", TIMESTAMP), "2023-11-14 22:13:20", NOV_14_2023),  # no zone: UTC
        (Column("t", TIMESTAMP), str(NOV_14_2023), NOV_14_2023),
        (Column("t", TIMESTAMP), 1.7e12, NOV_14_2023),
        (Column("day", DATE), "1970-01-11", 10),
        (Column("tod", TIME), "01:00:00.5", 3_600_500),
    ],
)
def test_json_decode_coerces_to_the_declared_type(
    column: Column, given: object, expected: object
) -> None:
    value = decode([column], {column.name: given})[column.name]
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(
    ("column", "given", "reason"),
    [
        (Column("n", BIGINT), "abc", "expected an integer"),
        (Column("n", BIGINT), 1.5, "expected an integer"),
        (Column("n", BIGINT), True, "expected an integer"),
        (Column("n", BIGINT), 2**64, "expected an integer"),  # orjson reads it as a float
        (Column("n", BIGINT), "9223372036854775808", "out of range for BIGINT"),
        (Column("n", INTEGER), 2**31, "out of range for INTEGER"),
        (Column("s", VARCHAR), {"a": 1}, "expected VARCHAR"),
        (Column("s", VARCHAR), [1], "expected VARCHAR"),
        (Column("p", decimal(4, 2)), 100, "out of range for DECIMAL(4,2)"),
        (Column("p", decimal(4, 2)), 99.999, "out of range for DECIMAL(4,2)"),  # rounds to 100
        (Column("p", decimal(4, 2)), "NaN", "expected DECIMAL(4,2)"),
        (Column("b", BOOLEAN), 1, "expected BOOLEAN"),
        (Column("d", DOUBLE), "x", "expected DOUBLE"),
        (Column("t", TIMESTAMP), "yesterday", "expected TIMESTAMP"),
        (Column("x", BYTES), "not base64!", "base64"),
    ],
)
def test_json_decode_rejects_wrong_types_naming_the_column(
    column: Column, given: object, reason: str
) -> None:
    with pytest.raises(DeserializationError, match=re.escape(reason)) as raised:
        decode([column], {column.name: given})
    assert f"column {column.name!r}" in str(raised.value)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"[1, 2]", "expected a JSON object, got an array"),
        (b"42", "expected a JSON object, got a int"),
        (b'"x"', "expected a JSON object, got a string"),
        (b"{not json", "invalid JSON"),
        (b"\xff\xfe", "invalid JSON"),
    ],
)
def test_json_decode_rejects_non_objects(data: bytes, reason: str) -> None:
    with pytest.raises(DeserializationError, match=reason):
        value_serde(Format.JSON, ORDERS).decode(data)


def test_json_names_match_exactly_first_then_case_insensitively() -> None:
    columns = [Column("order_id", BIGINT), Column("Status", VARCHAR), Column("note", VARCHAR)]
    row = decode(columns, {"ORDER_ID": "5", "status": "late", "Status": "exact", "other": 1})
    assert row["order_id"] == 5
    assert row["Status"] == "exact"
    assert row["note"] is None  # missing: NULL
    assert row["other"] == 1  # unknown fields stay; queries only read declared columns


def test_json_timestamp_format_applies_to_the_timestamp_column_only() -> None:
    columns = [Column("ts", TIMESTAMP), Column("other", TIMESTAMP), Column("label", VARCHAR)]
    serde = value_serde(
        Format.JSON, columns, timestamp_column="TS", timestamp_format="yyyy-MM-dd HH:mm:ss"
    )
    row = serde.decode(b'{"ts": "2023-11-14 22:13:20", "other": "2023-11-14T22:13:20Z"}')
    assert row == {"ts": NOV_14_2023, "other": NOV_14_2023, "label": None}
    assert serde.decode(b'{"ts": 5}') == {"ts": 5, "other": None, "label": None}
    with pytest.raises(DeserializationError, match="does not match timestamp format"):
        serde.decode(b'{"ts": "2023-11-14T22:13:20Z"}')


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        ("yyyy-MM-dd'T'HH:mm:ss.SSSX", "2023-11-14T22:13:20.250Z", NOV_14_2023 + 250),
        ("yyyy-MM-dd'T'HH:mm:ssXXX", "2023-11-14T23:13:20+01:00", NOV_14_2023),
        ("dd/MM/yyyy HH:mm", "14/11/2023 22:13", NOV_14_2023 - 20_000),
        ("yyyyMMddHHmmss", "20231114221320", NOV_14_2023),
        ("dd MMM yyyy hh:mm:ss a", "14 Nov 2023 10:13:20 PM", NOV_14_2023),
        ("yyyy-MM-dd 'at' HH:mm:ss", "2023-11-14 at 22:13:20", NOV_14_2023),
    ],
)
def test_timestamp_parser_reads_java_patterns(pattern: str, text: str, expected: int) -> None:
    assert timestamp_parser(pattern)(text) == expected


@pytest.mark.parametrize("pattern", ["yyyy-MM-dd G", "QQQ", "yyyy-MM-dd 'unterminated"])
def test_timestamp_parser_rejects_unsupported_patterns_up_front(pattern: str) -> None:
    with pytest.raises(ValueError, match="timestamp format"):
        timestamp_parser(pattern)


def test_json_nested_types_are_coerced() -> None:
    columns = [
        Column("ids", array(BIGINT)),
        Column("prices", map_of(VARCHAR, decimal(6, 2))),
        Column("by_n", map_of(INTEGER, VARCHAR)),
        Column("addr", struct([("city", VARCHAR), ("zip", INTEGER)])),
    ]
    record = {
        "ids": ["1", 2, None],
        "prices": {"a": 1.5, "b": "2.25"},
        "by_n": {"1": "one"},
        "addr": {"CITY": "Oslo", "zip": "150", "extra": True},
    }
    assert decode(columns, record) == {
        "ids": [1, 2, None],
        "prices": {"a": Decimal("1.50"), "b": Decimal("2.25")},
        "by_n": {1: "one"},
        "addr": {"city": "Oslo", "zip": 150},
    }
    with pytest.raises(DeserializationError, match="column 'addr': field 'zip'"):
        decode(columns, {"addr": {"zip": "x"}})
    with pytest.raises(DeserializationError, match="column 'ids': expected an integer"):
        decode(columns, {"ids": [1, "x"]})


def test_json_wide_decimals_are_read_exactly() -> None:
    columns = [Column("big", decimal(30, 4)), Column("d", DOUBLE), Column("nested", array(DOUBLE))]
    serde = value_serde(Format.JSON, columns)
    row = serde.decode(b'{"big": 12345678901234567890123456.7891, "d": 0.1, "nested": [1.5]}')
    assert row == {
        "big": Decimal("12345678901234567890123456.7891"),
        "d": 0.1,
        "nested": [1.5],
    }
    assert row is not None and type(row["d"]) is float


@given(
    st.decimals(
        min_value=Decimal("-9999999999999.99"),
        max_value=Decimal("9999999999999.99"),
        places=2,
        allow_nan=False,
        allow_infinity=False,
    )
)
def test_json_decimals_up_to_15_digits_read_back_exactly_as_written(value: Decimal) -> None:
    serde = value_serde(Format.JSON, [Column("p", decimal(15, 2))])
    literal = format(value, "f")
    row = serde.decode(b'{"p": ' + literal.encode() + b"}")
    assert row is not None and row["p"] == value
    assert row["p"].as_tuple().exponent == -2  # type: ignore[attr-defined]


def test_json_encode_writes_declared_columns_with_exact_decimals() -> None:
    columns = [
        Column("order_id", BIGINT),
        Column("amount", decimal(38, 10)),
        Column("raw", BYTES),
        Column("at", TIMESTAMP),
        Column("tags", map_of(INTEGER, VARCHAR)),
    ]
    serde = value_serde(Format.JSON, columns)
    amount = Decimal("1234567890123456789012345678.0123456789")
    row = {"order_id": 1, "amount": amount, "raw": b"\x01\x02", "at": 5, "extra": "x"}
    encoded = serde.encode({**row, "tags": {7: "seven"}})
    assert encoded is not None
    assert b'"amount":1234567890123456789012345678.0123456789' in encoded
    parsed = json.loads(encoded, parse_float=Decimal)
    assert parsed == {
        "order_id": 1,
        "amount": amount,
        "raw": "AQI=",
        "at": 5,
        "tags": {"7": "seven"},
    }
    assert serde.decode(encoded) == {**parsed, "raw": b"\x01\x02", "tags": {7: "seven"}}


def test_json_encode_rejects_what_json_cannot_hold() -> None:
    serde = value_serde(Format.JSON, [Column("p", decimal(10, 2))])
    with pytest.raises(SerializationError, match="JSON"):
        serde.encode({"p": Decimal("NaN")})
    with pytest.raises(SerializationError, match="JSON"):
        serde.encode({"p": object()})


def test_value_serde_leaves_key_columns_to_the_key() -> None:
    columns = [Column("id", VARCHAR, key=True), Column("n", BIGINT)]
    serde = value_serde(Format.JSON, columns)
    assert serde.encode({"id": "k", "n": 1}) == b'{"n":1}'
    assert value_serde(Format.DELIMITED, columns).decode(b"7") == {"n": 7}


# --- DELIMITED -----------------------------------------------------------------------------


def test_delimited_round_trip_with_quoting_and_nulls() -> None:
    serde = value_serde(Format.DELIMITED, ORDERS)
    row = serde.decode(b'123,"c-17, the ""best""",1234.5,,1700000000000')
    assert row == {
        "order_id": 123,
        "customer_id": 'c-17, the "best"',
        "amount": Decimal("1234.50"),
        "status": None,
        "created_at": NOV_14_2023,
    }
    encoded = serde.encode(row)
    assert encoded == b'123,"c-17, the ""best""",1234.50,,1700000000000'
    assert serde.decode(encoded) == row


def test_delimited_named_delimiters_and_types() -> None:
    columns = [Column("ok", BOOLEAN), Column("d", DOUBLE), Column("raw", BYTES)]
    serde = value_serde(Format.DELIMITED, columns, delimiter="TAB")
    assert serde.encode({"ok": True, "d": 0.5, "raw": b"\xff"}) == b"true\t0.5\t/w=="
    assert serde.decode(b"false\t1\t/w==") == {"ok": False, "d": 1.0, "raw": b"\xff"}


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"1,2", "expected 5 DELIMITED fields, got 2"),
        (b"1,a,1.0,b,c,d", "expected 5 DELIMITED fields, got 6"),
        (b"x,a,1.0,b,1", "column 'order_id'"),
        (b"\xff", "invalid DELIMITED"),
    ],
)
def test_delimited_rejects_bad_records(data: bytes, reason: str) -> None:
    with pytest.raises(DeserializationError, match=reason):
        value_serde(Format.DELIMITED, ORDERS).decode(data)


def test_delimited_cannot_hold_nested_types() -> None:
    with pytest.raises(ValueError, match="DELIMITED cannot hold"):
        value_serde(Format.DELIMITED, [Column("a", array(BIGINT))])
    with pytest.raises(ValueError, match="one character"):
        value_serde(Format.DELIMITED, ORDERS, delimiter="::")


# --- KAFKA ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql_type", "value", "data"),
    [
        (VARCHAR, "ключ", "ключ".encode()),
        (INTEGER, -2, pack(">i", -2)),
        (BIGINT, 2**40, pack(">q", 2**40)),
        (DOUBLE, 1.25, pack(">d", 1.25)),
        (BYTES, b"\x00\x01", b"\x00\x01"),
    ],
)
def test_kafka_format_matches_the_java_primitive_serializers(
    sql_type: Any, value: object, data: bytes
) -> None:
    keys = key_serde(Format.KAFKA, [Column("k", sql_type, key=True)])
    assert keys.encode([value]) == data
    assert keys.decode(data) == {"k": value}
    assert keys.decode(None) == {"k": None}
    assert keys.encode([None]) is None
    values = value_serde(Format.KAFKA, [Column("v", sql_type)])
    assert values.encode({"v": value}) == data
    assert values.decode(data) == {"v": value}
    assert values.decode(None) is None


def test_kafka_format_rejects_bad_bytes_and_shapes() -> None:
    keys = key_serde(Format.KAFKA, [Column("k", BIGINT)])
    with pytest.raises(DeserializationError, match="8 bytes, got 3"):
        keys.decode(b"abc")
    with pytest.raises(SerializationError):
        keys.encode(["not a number"])
    with pytest.raises(DeserializationError, match="UTF-8"):
        key_serde(Format.KAFKA, [Column("k", VARCHAR)]).decode(b"\xff")
    with pytest.raises(ValueError, match="no serializer for BOOLEAN"):
        key_serde(Format.KAFKA, [Column("k", BOOLEAN)])
    with pytest.raises(ValueError, match="exactly one column"):
        value_serde(Format.KAFKA, ORDERS)


# --- keys ----------------------------------------------------------------------------------


def test_no_key_columns() -> None:
    for fmt in Format:
        keys = key_serde(fmt, [])
        assert keys.decode(b"anything") == {}
        assert keys.decode(None) == {}
        assert keys.encode([]) is None


def test_json_keys_bare_for_one_column_object_for_several() -> None:
    one = key_serde(Format.JSON, [Column("id", BIGINT, key=True)])
    assert one.encode([5]) == b"5"
    assert one.decode(b"5") == {"id": 5}
    assert one.decode(b'{"ID": "6"}') == {"id": 6}
    assert one.decode(None) == {"id": None}
    two = key_serde(Format.JSON, [Column("a", VARCHAR), Column("b", BIGINT)])
    assert two.encode(["x", 1]) == b'{"a":"x","b":1}'
    assert two.decode(b'{"a": "x", "b": 1, "c": 2}') == {"a": "x", "b": 1}
    with pytest.raises(DeserializationError, match="expected a JSON object"):
        two.decode(b"[1]")
    point = key_serde(Format.JSON, [Column("p", struct([("x", BIGINT)]))])
    assert point.encode([{"x": 1}]) == b'{"x":1}'
    assert point.decode(b'{"x": 1}') == {"p": {"x": 1}}
    assert point.decode(b'{"p": {"x": 1}}') == {"p": {"x": 1}}


def test_delimited_keys() -> None:
    keys = key_serde(Format.DELIMITED, [Column("a", VARCHAR), Column("b", BIGINT)])
    assert keys.encode(["x,y", 2]) == b'"x,y",2'
    assert keys.decode(b'"x,y",2') == {"a": "x,y", "b": 2}
    assert keys.decode(None) == {"a": None, "b": None}


# --- AVRO ----------------------------------------------------------------------------------


class MemoryRegistry(SchemaRegistry):
    """The registry contract in memory: ids count up, one per distinct schema."""

    def __init__(self) -> None:
        super().__init__("http://registry.invalid")
        self.by_id: dict[int, str] = {}
        self.registered: list[tuple[str, str]] = []

    def register(self, subject: str, schema: str, schema_type: str = "AVRO") -> int:
        self.registered.append((subject, schema))
        for schema_id, known in self.by_id.items():
            if known == schema:
                return schema_id
        self.by_id[len(self.by_id) + 1] = schema
        return len(self.by_id)

    def get_schema(self, schema_id: int) -> str:
        if schema_id not in self.by_id:
            raise SchemaRegistryError(f"no schema {schema_id}", status=404)
        return self.by_id[schema_id]


ALL_TYPES = [
    Column("flag", BOOLEAN),
    Column("small", INTEGER),
    Column("big", BIGINT),
    Column("ratio", DOUBLE),
    Column("price", decimal(12, 3)),
    Column("name", VARCHAR),
    Column("blob", BYTES),
    Column("at", TIMESTAMP),
    Column("day", DATE),
    Column("tod", TIME),
    Column("tags", array(VARCHAR)),
    Column("attrs", map_of(VARCHAR, BIGINT)),
    Column("addr", struct([("city", VARCHAR), ("geo", struct([("lat", DOUBLE)]))])),
]
ALL_VALUES: dict[str, object] = {
    "flag": True,
    "small": -5,
    "big": 2**60,
    "ratio": 0.25,
    "price": Decimal("-1234.500"),
    "name": "Zoë",
    "blob": b"\x00\xff",
    "at": NOV_14_2023,
    "day": 19675,
    "tod": 45_296_789,
    "tags": ["a", None],
    "attrs": {"k": 1, "n": None},
    "addr": {"city": "Oslo", "geo": {"lat": 59.9}},
}


def test_avro_schema_for_our_columns() -> None:
    schema = avro_schema("Orders", ALL_TYPES)
    assert schema["type"] == "record" and schema["name"] == "Orders"
    fields = {f["name"]: f for f in schema["fields"]}
    assert all(f["type"][0] == "null" and f["default"] is None for f in fields.values())
    assert fields["price"]["type"][1] == {
        "type": "bytes",
        "logicalType": "decimal",
        "precision": 12,
        "scale": 3,
    }
    assert fields["at"]["type"][1] == {"type": "long", "logicalType": "timestamp-millis"}
    assert fields["day"]["type"][1] == {"type": "int", "logicalType": "date"}
    assert fields["tod"]["type"][1] == {"type": "int", "logicalType": "time-millis"}
    assert fields["tags"]["type"][1] == {"type": "array", "items": ["null", "string"]}
    assert fields["attrs"]["type"][1] == {"type": "map", "values": ["null", "long"]}
    assert fields["addr"]["type"][1]["type"] == "record"
    fastavro.parse_schema(schema)  # valid Avro, nested record names included
    with pytest.raises(ValueError, match="string keys"):
        avro_schema("X", [Column("m", map_of(INTEGER, VARCHAR))])
    with pytest.raises(ValueError, match="not a valid Avro field name"):
        avro_schema("X", [Column("has space", VARCHAR)])


def test_avro_round_trip_in_confluent_wire_format() -> None:
    registry = MemoryRegistry()
    serde = value_serde(Format.AVRO, ALL_TYPES, registry=registry, subject="t-value")
    encoded = serde.encode(ALL_VALUES)
    assert encoded is not None
    assert encoded[0] == 0 and int.from_bytes(encoded[1:5], "big") == 1
    assert registry.registered[0][0] == "t-value"
    assert json.loads(registry.by_id[1]) == avro_schema("StreamHouseValue", ALL_TYPES)
    assert serde.encode(ALL_VALUES) == encoded
    assert len(registry.registered) == 1  # registered once
    fresh = value_serde(Format.AVRO, ALL_TYPES, registry=registry)
    assert fresh.decode(encoded) == ALL_VALUES
    assert fresh.decode(None) is None
    assert serde.encode(dict.fromkeys(ALL_VALUES)) is not None


def test_avro_decode_maps_writer_fields_by_name_and_reads_missing_as_null() -> None:
    registry = MemoryRegistry()
    writer = {
        "type": "record",
        "name": "Old",
        "fields": [
            {"name": "NAME", "type": "string"},
            {"name": "at", "type": {"type": "long", "logicalType": "timestamp-micros"}},
            {"name": "gone", "type": "int"},
        ],
    }
    schema_id = registry.register("t-value", json.dumps(writer))
    payload = io.BytesIO()
    payload.write(b"\x00" + schema_id.to_bytes(4, "big"))
    record = {"NAME": "x", "at": NOV_14_2023 * 1000 + 7, "gone": 1}
    fastavro.schemaless_writer(payload, fastavro.parse_schema(writer), record)
    serde = value_serde(Format.AVRO, ALL_TYPES, registry=registry)
    row = serde.decode(payload.getvalue())
    assert row is not None
    assert row["name"] == "x"
    assert row["at"] == NOV_14_2023
    assert row["price"] is None and row["addr"] is None


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"{}", "not Confluent AVRO"),
        (b"\x01\x00\x00\x00\x01\x02", "not Confluent AVRO"),
        (b"\x00\x00\x00\x00\x63\x02", "unknown AVRO schema id 99"),
        (b"\x00\x00\x00\x00\x01\xff\xff", "invalid AVRO for schema id 1"),
    ],
)
def test_avro_decode_rejects_bad_records(data: bytes, reason: str) -> None:
    registry = MemoryRegistry()
    registry.register("t-value", json.dumps(avro_schema("R", ALL_TYPES)))
    with pytest.raises(DeserializationError, match=reason):
        value_serde(Format.AVRO, ALL_TYPES, registry=registry).decode(data)


def test_avro_registry_outage_is_not_a_bad_record() -> None:
    class Down(MemoryRegistry):
        def get_schema(self, schema_id: int) -> str:
            raise SchemaRegistryError("connection refused")

    serde = value_serde(Format.AVRO, ALL_TYPES, registry=Down())
    with pytest.raises(SchemaRegistryError):
        serde.decode(b"\x00\x00\x00\x00\x01\x02")


def test_avro_needs_a_registry_and_a_subject_to_write() -> None:
    with pytest.raises(ValueError, match="schema registry"):
        value_serde(Format.AVRO, ALL_TYPES)
    with pytest.raises(SerializationError, match="subject"):
        value_serde(Format.AVRO, ALL_TYPES, registry=MemoryRegistry()).encode(ALL_VALUES)
    serde = value_serde(Format.AVRO, ALL_TYPES, registry=MemoryRegistry(), subject="s")
    with pytest.raises(SerializationError, match="cannot write AVRO"):
        serde.encode({"small": "not an int"})


def test_avro_keys_bare_for_one_column_record_for_several() -> None:
    registry = MemoryRegistry()
    one = key_serde(Format.AVRO, [Column("id", VARCHAR)], registry=registry, subject="t-key")
    encoded = one.encode(["k1"])
    assert encoded is not None and encoded[5:] == b"\x04k1"  # Avro string: zigzag length, bytes
    assert json.loads(registry.by_id[1]) == "string"
    assert one.decode(encoded) == {"id": "k1"}
    assert one.encode([None]) is None
    assert one.decode(None) == {"id": None}
    two = key_serde(
        Format.AVRO, [Column("a", VARCHAR), Column("b", BIGINT)], registry=registry, subject="k"
    )
    encoded = two.encode(["x", 3])
    assert encoded is not None
    assert two.decode(encoded) == {"a": "x", "b": 3}


# --- registry client -----------------------------------------------------------------------


def test_registry_client_takes_credentials_out_of_the_url() -> None:
    registry = SchemaRegistry("http://user:p%40ss@registry.local:8081/apis/ccompat/v7/")
    assert registry.url == "http://registry.local:8081/apis/ccompat/v7"
    expected = base64.b64encode(b"user:p@ss").decode()
    assert registry._headers["Authorization"] == f"Basic {expected}"


def test_registry_client_reports_unreachable_registries() -> None:
    registry = SchemaRegistry("http://127.0.0.1:9", timeout_s=2)
    with pytest.raises(SchemaRegistryError) as raised:
        registry.get_schema(1)
    assert raised.value.status is None
