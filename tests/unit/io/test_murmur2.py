"""The runtime's murmur2 (io/partitioner.py) against published vectors of Kafka's
Java `Utils.murmur2` and librdkafka's murmur2 unit test, and the partition rule on top of it."""

from __future__ import annotations

import pytest

from streamhouse_runtime.io.partitioner import java_partition, murmur2, to_positive

pytestmark = pytest.mark.unit

# Kafka's UtilsTest.testMurmur2 (clients/src/test/.../common/utils/UtilsTest.java): Java ints.
KAFKA_UTILS_TEST = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}

# librdkafka's unittest_murmur2 (src/rdmurmur2.c): the same hash as 32-bit words, including
# every tail length and the empty key.
LIBRDKAFKA_UNITTEST = {
    b"kafka": 0xD067CF64,
    b"giberish123456789": 0x8F552B0C,
    b"1234": 0x9FC97B14,
    b"234": 0xE7C009CA,
    b"34": 0x873930DA,
    b"4": 0x5A4B5CA1,
    b"PreAmbleWillBeRemoved,ThePrePartThatIs": 0x78424F1C,
    b"reAmbleWillBeRemoved,ThePrePartThatIs": 0x4A62B377,
    b"eAmbleWillBeRemoved,ThePrePartThatIs": 0xE0E4E09E,
    b"AmbleWillBeRemoved,ThePrePartThatIs": 0x62B8B43F,
    b"": 0x106E08D9,
}


@pytest.mark.parametrize(("key", "expected"), KAFKA_UTILS_TEST.items())
def test_murmur2_matches_kafkas_utils_test(key: bytes, expected: int) -> None:
    assert murmur2(key) == expected


@pytest.mark.parametrize(("key", "expected"), LIBRDKAFKA_UNITTEST.items())
def test_murmur2_matches_librdkafkas_vectors(key: bytes, expected: int) -> None:
    assert murmur2(key) & 0xFFFFFFFF == expected
    assert -(2**31) <= murmur2(key) < 2**31  # a Java int


def test_to_positive_clears_the_sign_bit_like_kafka() -> None:
    assert to_positive(-1) == 0x7FFFFFFF
    assert to_positive(-(2**31)) == 0  # Utils.toPositive(Integer.MIN_VALUE), where abs fails
    assert to_positive(479470107) == 479470107


def test_java_partition_is_to_positive_murmur2_mod_n() -> None:
    # "21": -973932308 & 0x7fffffff = 1173551340; "foobar": -790332482 -> 1357151166.
    assert java_partition(b"21", 4) == 1173551340 % 4 == 0
    assert java_partition(b"foobar", 4) == 1357151166 % 4 == 2
    assert java_partition(b"abc", 7) == 479470107 % 7
    assert all(java_partition(str(n).encode(), 1) == 0 for n in range(50))
