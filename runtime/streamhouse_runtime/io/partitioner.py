"""The partition a Java producer picks for a key: Kafka's `Utils.murmur2` and the built-in
partitioner's `toPositive(murmur2(keyBytes)) % numPartitions`. Pods ask librdkafka for the
same rule (`partitioner=murmur2_random`); the offline runner places records with this one."""

from __future__ import annotations

_SEED = 0x9747B28C
_M = 0x5BD1E995
_R = 24
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's `Utils.murmur2`: 32-bit MurmurHash2 of `data`, as Java's signed `int`."""
    length = len(data)
    h = (_SEED ^ length) & _MASK
    end = length - length % 4
    for i in range(0, end, 4):
        k = int.from_bytes(data[i : i + 4], "little")  # Java reads each 4-byte block LE
        k = (k * _M) & _MASK
        k ^= k >> _R
        k = (k * _M) & _MASK
        h = (h * _M) & _MASK
        h ^= k
    rest = length % 4
    if rest == 3:
        h ^= data[end + 2] << 16
    if rest >= 2:
        h ^= data[end + 1] << 8
    if rest >= 1:
        h ^= data[end]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def to_positive(number: int) -> int:
    """Kafka's `Utils.toPositive`: the sign bit cleared (not `abs`)."""
    return number & 0x7FFFFFFF


def java_partition(key: bytes, partitions: int) -> int:
    """The partition Kafka's Java producer (and Kafka Streams, ksqlDB) picks for `key`."""
    return to_positive(murmur2(key)) % partitions
