"""Small, pure SHA-256d helpers: targets, difficulties and hash comparisons.

Conventions (the same as ``shared/vectors/stratum_shares.json``):

* A hash is the 32 raw bytes of ``sha256(sha256(header))``.  Compared with a target it is
  read as a *little-endian* 256-bit integer (equivalently: reverse the bytes for the
  "display" hex that block explorers print, then read that big-endian).
* Difficulty 1 is the pool convention ``DIFF1 = 0xFFFF * 2**208``; a share target is
  ``floor(DIFF1 / difficulty)``, computed with exact fractions.  A float difficulty is
  taken at its shortest decimal ``repr`` (what appears on the wire in JSON), so the pool
  and the miner derive bit-identical targets from the same JSON number.
"""
from __future__ import annotations

import hashlib
import math
from decimal import Decimal
from fractions import Fraction
from numbers import Rational

from sgm.checks import is_int

__all__ = [
    "DIFF1", "MAX_TARGET", "sha256d", "nbits_to_target", "target_to_nbits",
    "difficulty_to_target", "target_to_difficulty", "hash_to_int", "hash_difficulty",
    "bits_to_target", "bits_to_difficulty", "meets_target", "display_hash",
]

#: Target of a difficulty-1 share (pool convention, "pdiff").
DIFF1 = 0xFFFF << 208
#: Largest valid 256-bit target.
MAX_TARGET = (1 << 256) - 1


def sha256d(data: bytes) -> bytes:
    """Double SHA-256 of ``data`` (raw 32-byte digest, internal byte order)."""
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def display_hash(hash32: bytes) -> str:
    """Hex as block explorers print it (byte-reversed digest)."""
    return bytes(hash32)[::-1].hex()


def nbits_to_target(bits: int) -> int:
    """Expand a compact ``nBits`` value into the 256-bit target it encodes.

    Raises ValueError for a value outside u32, a negative encoding (sign bit 0x00800000
    set) or a target that does not fit in 256 bits.
    """
    if not is_int(bits):
        raise ValueError(f"nbits must be an int, got {type(bits).__name__}")
    if not 0 <= bits <= 0xFFFFFFFF:
        raise ValueError(f"nbits {bits:#x} is not a 32-bit value")
    exponent = bits >> 24
    mantissa = bits & 0x007FFFFF
    if bits & 0x00800000:
        raise ValueError(f"nbits {bits:08x} encodes a negative target")
    if exponent <= 3:
        target = mantissa >> (8 * (3 - exponent))
    else:
        target = mantissa << (8 * (exponent - 3))
    if target > MAX_TARGET:
        raise ValueError(f"nbits {bits:08x} overflows 256 bits")
    return target


def target_to_nbits(target: int) -> int:
    """Compact encoding of ``target`` (rounded down, as Bitcoin Core's GetCompact)."""
    if not 0 <= target <= MAX_TARGET:
        raise ValueError("target must be in 0 .. 2^256-1")
    size = (target.bit_length() + 7) // 8
    if size <= 3:
        mantissa = target << (8 * (3 - size))
    else:
        mantissa = target >> (8 * (size - 3))
    if mantissa & 0x00800000:
        mantissa >>= 8
        size += 1
    return (size << 24) | mantissa


def _as_fraction(diff: float | int | Fraction | Decimal | str) -> Fraction:
    if isinstance(diff, bool):
        raise ValueError("difficulty must be a number, not a bool")
    if isinstance(diff, float):
        if math.isnan(diff) or math.isinf(diff):
            raise ValueError(f"difficulty must be finite, got {diff!r}")
        return Fraction(repr(diff))
    if isinstance(diff, (int, Fraction, Rational)):
        return Fraction(diff)
    if isinstance(diff, Decimal):
        if not diff.is_finite():
            raise ValueError(f"difficulty must be finite, got {diff!r}")
        return Fraction(diff)
    if isinstance(diff, str):
        try:
            value = Fraction(diff.strip())
        except (ValueError, ZeroDivisionError) as exc:
            raise ValueError(f"difficulty {diff!r} is not a number") from exc
        return value
    raise ValueError(f"difficulty must be a number, got {type(diff).__name__}")


def difficulty_to_target(diff: float | int | Fraction | Decimal | str) -> int:
    """Share target for a pool difficulty: ``floor(DIFF1 / diff)``, exact.

    Targets above 2^256-1 (difficulties below ~1.5e-5 of the minimum) are clamped to
    ``MAX_TARGET``.  Raises ValueError for diff <= 0, NaN, infinity, non-numbers, or a
    difficulty so high that the target would be 0.
    """
    q = _as_fraction(diff)
    if q <= 0:
        raise ValueError(f"difficulty must be > 0, got {diff!r}")
    target = math.floor(Fraction(DIFF1) / q)
    if target <= 0:
        raise ValueError(f"difficulty {diff!r} is too high: the share target would be 0")
    return min(target, MAX_TARGET)


def target_to_difficulty(target: int) -> float:
    """Pool difficulty of a target: ``DIFF1 / target`` (float)."""
    if not is_int(target):
        raise ValueError(f"target must be an int, got {type(target).__name__}")
    if not 0 < target <= MAX_TARGET:
        raise ValueError("target must be in 1 .. 2^256-1")
    return DIFF1 / target


def hash_to_int(hash32: bytes) -> int:
    """The 32 digest bytes read as a little-endian integer (the value compared to targets)."""
    if len(hash32) != 32:
        raise ValueError(f"a hash is 32 bytes, got {len(hash32)}")
    return int.from_bytes(hash32, "little")


def hash_difficulty(hash32: bytes) -> float:
    """Share difficulty a hash achieves: ``DIFF1 / hash_to_int(hash)`` (inf for a zero hash)."""
    value = hash_to_int(hash32)
    if value == 0:
        return math.inf
    return DIFF1 / value


def bits_to_target(leading_zero_bits: int) -> int:
    """Target whose hits have at least ``leading_zero_bits`` leading zero bits: 2^(256-n)-1."""
    if not is_int(leading_zero_bits):
        raise ValueError("leading zero bits must be an int")
    if not 0 <= leading_zero_bits <= 255:
        raise ValueError(f"leading zero bits must be 0..255, got {leading_zero_bits}")
    return (1 << (256 - leading_zero_bits)) - 1


def bits_to_difficulty(leading_zero_bits: int) -> float:
    """Pool difficulty (float) whose target is about ``bits_to_target(n)``.

    The embedded pool announces this value with ``mining.set_difficulty`` and both sides
    derive the exact target from it with :func:`difficulty_to_target`.
    """
    return float(Fraction(DIFF1, bits_to_target(leading_zero_bits) + 1))


def meets_target(hash32: bytes, target: int) -> bool:
    """True when the hash, read little-endian, is <= target."""
    return hash_to_int(hash32) <= target
