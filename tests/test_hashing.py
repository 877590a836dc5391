"""sgm.hashing: targets, difficulties and hash comparisons, checked against real headers."""
import hashlib
import math
import struct
from fractions import Fraction

import pytest

from sgm.hashing import (
    DIFF1,
    MAX_TARGET,
    bits_to_difficulty,
    bits_to_target,
    difficulty_to_target,
    display_hash,
    hash_difficulty,
    hash_to_int,
    meets_target,
    nbits_to_target,
    sha256d,
    target_to_difficulty,
    target_to_nbits,
)
from tests.conftest import load_vectors as load, vectors_dir  # noqa: E402,F401


def test_sha256d_is_double_sha256():
    assert sha256d(b"").hex() == "5df6e0e2761359d30a8275058e299fcc0381534545f55cf43e41983f5d4c9456"
    data = bytes(range(200))
    assert sha256d(data) == hashlib.sha256(hashlib.sha256(data).digest()).digest()


def test_diff1_is_the_pool_convention():
    assert DIFF1 == 0x00000000FFFF0000000000000000000000000000000000000000000000000000
    assert nbits_to_target(0x1D00FFFF) == DIFF1  # the genesis block's nBits


@pytest.mark.parametrize("bits, target", [
    (0x01003456, 0x00), (0x01123456, 0x12), (0x02123456, 0x1234), (0x03123456, 0x123456),
    (0x04123456, 0x12345600), (0x05009234, 0x92340000),
    (0x20123456, 0x1234560000000000000000000000000000000000000000000000000000000000),
    (0x1705AE3A, 0x05AE3A << (8 * 0x14)),
])
def test_nbits_to_target_known_values(bits, target):
    assert nbits_to_target(bits) == target


@pytest.mark.parametrize("bits", [0x04923456, 0x01FEDCBA, 0x1D80FFFF])
def test_nbits_negative_is_refused(bits):
    with pytest.raises(ValueError, match="negative"):
        nbits_to_target(bits)


@pytest.mark.parametrize("bits", [0xFF123456, 0x21010000, 0x23000001])
def test_nbits_overflow_is_refused(bits):
    with pytest.raises(ValueError, match="overflow"):
        nbits_to_target(bits)


@pytest.mark.parametrize("bits", [-1, 1 << 32, "1d00ffff", True])
def test_nbits_not_a_u32_is_refused(bits):
    with pytest.raises(ValueError):
        nbits_to_target(bits)


def test_every_real_header_meets_its_nbits_and_compacts_back():
    headers = load("headers.json")["headers"]
    assert len(headers) >= 10
    for v in headers:
        hdr = bytes.fromhex(v["header_hex"])
        bits = struct.unpack("<I", hdr[72:76])[0]
        target = nbits_to_target(bits)
        digest = sha256d(hdr)
        assert display_hash(digest) == v["block_hash"], v["name"]
        assert meets_target(digest, target), v["name"]
        assert target_to_nbits(target) == bits, v["name"]
        # the neighbour nonce does not reproduce the block hash
        assert sha256d(hdr[:76] + struct.pack("<I", (v["nonce"] + 1) & 0xFFFFFFFF)) != digest


def test_difficulty_to_target_exact_fractions():
    assert difficulty_to_target(1) == DIFF1
    assert difficulty_to_target(2) == DIFF1 // 2
    assert difficulty_to_target(Fraction(1, 3)) == 3 * DIFF1
    assert difficulty_to_target(512) == DIFF1 // 512
    # a float is taken at its decimal repr, exactly (as on the wire)
    d = 0.03571428571428571
    assert difficulty_to_target(d) == math.floor(Fraction(DIFF1) / Fraction("0.03571428571428571"))
    assert difficulty_to_target(100.5) == math.floor(Fraction(DIFF1) * 2 / 201)


def test_fractional_difficulty_matches_the_recorded_share_target():
    share = next(s for s in load("stratum_shares.json")["shares"] if s["id"].startswith("sri-cpuminer"))
    target = difficulty_to_target(share["set_difficulty"])
    logged = int(share["source_asserted"]["share_target_display"], 16)
    # cpuminer logged its target rounded to a few hex digits; ours agrees in the leading 24 bits
    assert target >> 200 == logged >> 200
    assert hash_to_int(bytes.fromhex(share["expected_hash"])[::-1]) <= target


def test_tiny_difficulty_clamps_to_max_target():
    assert difficulty_to_target(1e-30) == MAX_TARGET


@pytest.mark.parametrize("bad", [0, -1, 0.0, -0.5, float("nan"), float("inf"), float("-inf"), "abc", True, None, 1e80])
def test_difficulty_to_target_refuses_bad_values(bad):
    with pytest.raises(ValueError):
        difficulty_to_target(bad)


def test_target_to_difficulty():
    assert target_to_difficulty(DIFF1) == 1.0
    assert target_to_difficulty(DIFF1 // 1024) == pytest.approx(1024.0)
    for bad in (0, -5, MAX_TARGET + 1):
        with pytest.raises(ValueError):
            target_to_difficulty(bad)


def test_hash_to_int_is_little_endian():
    assert hash_to_int(b"\x01" + b"\x00" * 31) == 1
    assert hash_to_int(b"\x00" * 31 + b"\x01") == 1 << 248
    with pytest.raises(ValueError):
        hash_to_int(b"\x00" * 31)


def test_hash_difficulty_of_real_shares():
    shares = load("stratum_shares.json")["shares"]
    for s in shares:
        digest = bytes.fromhex(s["expected_hash"])[::-1]
        assert hash_difficulty(digest) == s["expected_hash_difficulty"], s["id"]
    assert hash_difficulty(b"\x00" * 32) == math.inf


def test_bits_to_target():
    assert bits_to_target(0) == MAX_TARGET
    assert bits_to_target(20) == (1 << 236) - 1
    assert bits_to_target(255) == 1
    for bad in (-1, 256, 2.0):
        with pytest.raises(ValueError):
            bits_to_target(bad)
    # the difficulty the local pool announces for N bits gives (almost exactly) that target
    for n in (8, 12, 20, 32):
        t = difficulty_to_target(bits_to_difficulty(n))
        assert abs(t - (1 << (256 - n))) <= (1 << (256 - n)) >> 40


def test_meets_target_boundary():
    h = (12345).to_bytes(32, "little")
    assert meets_target(h, 12345)
    assert meets_target(h, 12346)
    assert not meets_target(h, 12344)
