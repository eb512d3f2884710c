"""Kafka record keys and values to and from rows: the four formats and the schema registry."""

from streamhouse_runtime.io.registry import SchemaRegistry, SchemaRegistryError
from streamhouse_runtime.io.serde import (
    DeserializationError,
    KeySerde,
    SerializationError,
    ValueSerde,
    avro_schema,
    key_serde,
    timestamp_parser,
    value_serde,
)

__all__ = [
    "DeserializationError",
    "KeySerde",
    "SchemaRegistry",
    "SchemaRegistryError",
    "SerializationError",
    "ValueSerde",
    "avro_schema",
    "key_serde",
    "timestamp_parser",
    "value_serde",
]
