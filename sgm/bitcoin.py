"""Bitcoin primitives, defined once: serialization, script numbers, BIP 34, merkle trees,
transaction ids, the BIP 141 witness commitment and the version bits miners may roll.

The embedded pool (:mod:`sgm.pool.template`), solo mining (:mod:`sgm.solo`) and the
miner's jobs (:mod:`sgm.jobs`) all build on these.  The pool's share check
(:mod:`sgm.pool.shares`) deliberately keeps its own few lines of header assembly, so that
a byte-order mistake here or in the miner shows up as a refused share.

Target, difficulty and compact-bits arithmetic lives in :mod:`sgm.hashing` (a leaf module
the device and scheduler code import on their own); it is re-exported here so callers
that work with blocks and scripts need one import.

Byte orders: every hash here is a raw 32-byte digest in *internal* order (the bytes that
go into headers and merkle hashing); block explorers print them byte-reversed.
"""
from __future__ import annotations

import struct
from collections.abc import Sequence

from sgm.hashing import (
    DIFF1,
    MAX_TARGET,
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

__all__ = [
    # re-exported from sgm.hashing
    "DIFF1", "MAX_TARGET", "sha256d", "display_hash", "hash_to_int", "hash_difficulty",
    "meets_target", "nbits_to_target", "target_to_nbits", "difficulty_to_target",
    "target_to_difficulty",
    # defined here
    "DEFAULT_VERSION_MASK", "varint", "read_varint", "script_num", "decode_script_num",
    "push_data", "push_int", "bip34_height_script", "parse_bip34_height", "merkle_root",
    "merkle_branch", "merkle_root_from_branch", "strip_witness", "txid", "wtxid",
    "WITNESS_MAGIC", "COMMITMENT_PREFIX", "WITNESS_RESERVED_VALUE", "witness_commitment",
    "commitment_script",
]

#: BIP 320's general-purpose header version bits (13..28): the version-rolling mask a
#: miner asks for and the embedded pool grants unless told otherwise (BIP 310).
DEFAULT_VERSION_MASK = 0x1FFFE000

# script opcodes used below
OP_0 = 0x00
OP_PUSHDATA1, OP_PUSHDATA2, OP_PUSHDATA4 = 0x4C, 0x4D, 0x4E
OP_1NEGATE = 0x4F
OP_1 = 0x51   # OP_1..OP_16 are 0x51..0x60


# ---------------------------------------------------------------------- CompactSize
def varint(n: int) -> bytes:
    """Bitcoin's CompactSize encoding of a non-negative int below 2**64."""
    if not 0 <= n < 1 << 64:
        raise ValueError(f"CompactSize of {n}: must be in 0 .. 2**64-1")
    if n < 0xFD:
        return bytes([n])
    if n <= 0xFFFF:
        return b"\xfd" + struct.pack("<H", n)
    if n <= 0xFFFFFFFF:
        return b"\xfe" + struct.pack("<I", n)
    return b"\xff" + struct.pack("<Q", n)


#: For each CompactSize prefix byte: (payload size, smallest value it may carry).  A value
#: below that minimum has a shorter encoding, and nodes refuse the longer one.
_VARINT_FORMS = {0xFD: (2, 0xFD), 0xFE: (4, 0x10000), 0xFF: (8, 0x100000000)}


def read_varint(data: bytes, pos: int = 0) -> tuple[int, int]:
    """(value, position after it) of the CompactSize at ``pos``.

    Raises ValueError for truncated data or a non-canonical (longer than needed) encoding.
    """
    if not 0 <= pos < len(data):
        raise ValueError(f"CompactSize at byte {pos}: no data")
    first = data[pos]
    if first < 0xFD:
        return first, pos + 1
    size, least = _VARINT_FORMS[first]
    end = pos + 1 + size
    if end > len(data):
        raise ValueError(f"CompactSize at byte {pos}: truncated (needs {size} more bytes)")
    value = int.from_bytes(data[pos + 1:end], "little")
    if value < least:
        raise ValueError(f"CompactSize at byte {pos}: non-canonical encoding of {value}")
    return value, end


# ------------------------------------------------------------------- script numbers
def script_num(n: int) -> bytes:
    """Minimal script-number encoding of ``n`` (Bitcoin Core's ``CScriptNum::serialize``).

    Little-endian magnitude with the sign in the top bit of the last byte; an extra 0x00
    (or 0x80 for a negative number) is appended when the magnitude already uses that bit.
    Zero is the empty string.
    """
    if n == 0:
        return b""
    magnitude = abs(n)
    out = bytearray(magnitude.to_bytes((magnitude.bit_length() + 7) // 8, "little"))
    if out[-1] & 0x80:
        out.append(0x80 if n < 0 else 0x00)
    elif n < 0:
        out[-1] |= 0x80
    return bytes(out)


def decode_script_num(data: bytes, *, max_size: int = 4, minimal: bool = True) -> int:
    """The number a script-number encoding holds (Core's ``CScriptNum`` constructor).

    Raises ValueError for more than ``max_size`` bytes or, with ``minimal``, an encoding
    with needless trailing bytes (BIP 62 rule 4: e.g. ``00``, ``0100``, ``80``).
    """
    if len(data) > max_size:
        raise ValueError(f"script number of {len(data)} bytes: at most {max_size} allowed")
    if not data:
        return 0
    # the last byte holds only the sign (0x00 or 0x80): it is needed only when the byte
    # before it has its top bit set, else the number has a shorter encoding
    if minimal and data[-1] & 0x7F == 0 and (len(data) == 1 or not data[-2] & 0x80):
        raise ValueError(f"script number {data.hex()} is not minimally encoded")
    magnitude = int.from_bytes(data, "little") & ~(0x80 << (8 * (len(data) - 1)))
    return -magnitude if data[-1] & 0x80 else magnitude


def push_data(data: bytes) -> bytes:
    """The smallest push of ``data`` as bytes (Core's ``CScript << std::vector``): a
    direct push up to 75 bytes, then OP_PUSHDATA1/2/4.  Never an OP_N opcode: that is
    :func:`push_int`'s business."""
    n = len(data)
    if n < OP_PUSHDATA1:
        return bytes([n]) + data
    if n <= 0xFF:
        return bytes([OP_PUSHDATA1, n]) + data
    if n <= 0xFFFF:
        return bytes([OP_PUSHDATA2]) + struct.pack("<H", n) + data
    if n <= 0xFFFFFFFF:
        return bytes([OP_PUSHDATA4]) + struct.pack("<I", n) + data
    raise ValueError("push of more than 2**32-1 bytes")


def push_int(n: int) -> bytes:
    """``CScript() << n`` for an integer: OP_0, OP_1NEGATE, OP_1..OP_16 for -1 and 0..16,
    else a push of the number's minimal encoding."""
    if n == 0:
        return bytes([OP_0])
    if n == -1:
        return bytes([OP_1NEGATE])
    if 1 <= n <= 16:
        return bytes([OP_1 + n - 1])
    return push_data(script_num(n))


# ---------------------------------------------------------------------------- BIP 34
def bip34_height_script(height: int) -> bytes:
    """The bytes a coinbase scriptSig must start with at ``height`` (BIP 34, as Bitcoin
    Core checks it: ``CScript() << height``).

    Heights 1..16 are the single opcodes OP_1..OP_16, not a one-byte push: a coinbase
    starting ``01 01`` at height 1 is refused with ``bad-cb-height``.
    """
    if not 0 <= height <= 0x7FFFFFFF:
        raise ValueError(f"block height {height} out of range 0 .. 2**31-1")
    return push_int(height)


def parse_bip34_height(script_sig: bytes) -> int:
    """The height a coinbase scriptSig starts with: OP_0, OP_1..OP_16, or a push of 1..5
    bytes holding a non-negative script number.  Raises ValueError otherwise."""
    if not script_sig:
        raise ValueError("coinbase scriptSig is empty")
    op = script_sig[0]
    if op == OP_0:
        return 0
    if OP_1 <= op <= OP_1 + 15:
        return op - OP_1 + 1
    if 1 <= op <= 5:
        if len(script_sig) < 1 + op:
            raise ValueError(f"coinbase scriptSig is truncated inside its height push ({op} bytes)")
        value = decode_script_num(script_sig[1:1 + op], max_size=5, minimal=False)
        if value < 0:
            raise ValueError("coinbase height is negative")
        return value
    raise ValueError(f"coinbase scriptSig does not start with a height (opcode {op:#04x})")


# ---------------------------------------------------------------------------- merkle
def merkle_root(hashes: Sequence[bytes]) -> bytes:
    """Merkle root of txids (or wtxids), internal order; on a level with an odd count the
    last node is paired with itself."""
    if not hashes:
        raise ValueError("merkle root of no hashes")
    level = list(hashes)
    while len(level) > 1:
        if len(level) % 2:
            level.append(level[-1])
        level = [sha256d(level[i] + level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


def merkle_branch(txids: Sequence[bytes]) -> list[bytes]:
    """Stratum merkle branch of the coinbase: the siblings on its path to the root, given
    the txids (internal order) of every transaction *after* the coinbase.

    The coinbase's own node is unknown at every level (it depends on the extranonce), so
    each level is kept without it: its first entry is the sibling, the rest is hashed in
    pairs (the last paired with itself when the count is odd).
    """
    branch: list[bytes] = []
    rest = list(txids)
    while rest:
        branch.append(rest[0])
        others = rest[1:]
        if len(others) % 2:
            others.append(others[-1])
        rest = [sha256d(others[i] + others[i + 1]) for i in range(0, len(others), 2)]
    return branch


def merkle_root_from_branch(leaf: bytes, branch: Sequence[bytes]) -> bytes:
    """Fold the coinbase txid (internal order) up a Stratum merkle branch."""
    h = leaf
    for sibling in branch:
        h = sha256d(h + sibling)
    return h


# ---------------------------------------------------------------------- transactions
def strip_witness(raw_tx: bytes) -> bytes:
    """The serialization of ``raw_tx`` without its witness data (BIP 144 marker, flag and
    witness stacks removed); a transaction without witness comes back unchanged.

    Walks only the lengths (inputs, outputs, stacks); raises ValueError for truncated or
    trailing data.
    """
    data = bytes(raw_tx)
    if len(data) < 10:
        raise ValueError(f"transaction of {len(data)} bytes is too short")
    segwit = data[4] == 0 and data[5] == 1
    pos = 6 if segwit else 4
    body_start = pos
    n_in, pos = read_varint(data, pos)
    for _ in range(n_in):
        script_len, pos = read_varint(data, pos + 36)      # prevout (32 + 4)
        pos += script_len + 4                              # scriptSig, sequence
    n_out, pos = read_varint(data, pos)
    for _ in range(n_out):
        script_len, pos = read_varint(data, pos + 8)       # value
        pos += script_len
    body_end = pos
    if segwit:
        for _ in range(n_in):
            n_items, pos = read_varint(data, pos)
            for _ in range(n_items):
                item_len, pos = read_varint(data, pos)
                pos += item_len
    end = pos + 4                                          # locktime
    if end > len(data):
        raise ValueError("transaction: truncated")
    if end < len(data):
        raise ValueError(f"transaction: {len(data) - end} bytes after the locktime")
    return data[:4] + data[body_start:body_end] + data[pos:]


def txid(raw_tx: bytes) -> bytes:
    """The txid (internal order) of a serialized transaction, with or without witness."""
    return sha256d(strip_witness(raw_tx))


def wtxid(raw_tx: bytes) -> bytes:
    """The wtxid (internal order): the hash of the full serialization (BIP 141); equal to
    the txid for a transaction without witness."""
    return sha256d(bytes(raw_tx))


# ------------------------------------------------------------- witness commitment
#: The commitment output script starts OP_RETURN, push 36, then these 4 bytes (BIP 141).
WITNESS_MAGIC = bytes.fromhex("aa21a9ed")
COMMITMENT_PREFIX = bytes.fromhex("6a24") + WITNESS_MAGIC
#: The coinbase witness (BIP 141): one 32-byte item, the witness reserved value (zeros).
WITNESS_RESERVED_VALUE = bytes(32)


def witness_commitment(wtxids: Sequence[bytes], reserved: bytes = WITNESS_RESERVED_VALUE) -> bytes:
    """BIP 141: sha256d(witness merkle root ‖ reserved value); ``wtxids`` exclude the
    coinbase, whose wtxid counts as 32 zero bytes."""
    return sha256d(merkle_root([bytes(32), *wtxids]) + reserved)


def commitment_script(commitment: bytes) -> bytes:
    """The coinbase output script carrying a witness commitment."""
    if len(commitment) != 32:
        raise ValueError("a witness commitment is 32 bytes")
    return COMMITMENT_PREFIX + commitment
