"""StreamHouse runtime: the process every query pod runs (Kafka, SQL, RocksDB state)."""

__version__ = "0.1.0"
