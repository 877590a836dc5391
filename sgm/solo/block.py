"""Transactions and blocks: (de)serialization with and without witness data, merkle roots,
the BIP 141 witness commitment, and a block checker that applies the rules a node applies
to a freshly mined block (before ``submitblock`` and in the tests).

Hashes are raw 32-byte digests in internal byte order; ``display`` hex (block explorers,
RPC ``txid``/``hash`` fields) is the byte-reversed form.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Sequence

from sgm.hashing import meets_target, nbits_to_target, sha256d

__all__ = [
    "BlockError", "TxIn", "TxOut", "Tx", "Block", "read_varint", "varint", "merkle_root",
    "merkle_branch", "witness_commitment", "commitment_script", "WITNESS_MAGIC",
    "WITNESS_RESERVED_VALUE", "bip34_height_script", "parse_bip34_height", "check_block",
    "find_witness_commitment",
]

#: The commitment output script starts OP_RETURN, push 36, then these 4 bytes (BIP 141).
WITNESS_MAGIC = bytes.fromhex("aa21a9ed")
COMMITMENT_PREFIX = bytes.fromhex("6a24") + WITNESS_MAGIC
#: The coinbase witness (BIP 141): one 32-byte item, the witness reserved value (zeros).
WITNESS_RESERVED_VALUE = bytes(32)
#: Coinbase scriptSig size limits (consensus: "bad-cb-length").
COINBASE_SCRIPT_MIN, COINBASE_SCRIPT_MAX = 2, 100


class BlockError(ValueError):
    """A transaction or block that cannot be parsed or breaks a consensus rule."""


# ---------------------------------------------------------------------- primitives
def varint(n: int) -> bytes:
    """Bitcoin's CompactSize encoding."""
    if n < 0:
        raise ValueError("varint of a negative number")
    if n < 0xFD:
        return bytes([n])
    if n <= 0xFFFF:
        return b"\xfd" + struct.pack("<H", n)
    if n <= 0xFFFFFFFF:
        return b"\xfe" + struct.pack("<I", n)
    return b"\xff" + struct.pack("<Q", n)


class _Reader:
    def __init__(self, data: bytes, what: str) -> None:
        self.data = data
        self.pos = 0
        self.what = what

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise BlockError(f"{self.what}: truncated at byte {self.pos} (wanted {n} more)")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def u32(self) -> int:
        return int(struct.unpack("<I", self.take(4))[0])

    def i64(self) -> int:
        return int(struct.unpack("<q", self.take(8))[0])

    def varint(self) -> int:
        first = self.take(1)[0]
        if first < 0xFD:
            return first
        size = {0xFD: 2, 0xFE: 4, 0xFF: 8}[first]
        value = int.from_bytes(self.take(size), "little")
        if value < {2: 0xFD, 4: 0x10000, 8: 0x100000000}[size]:
            raise BlockError(f"{self.what}: non-canonical CompactSize at byte {self.pos - size - 1}")
        return value

    def count(self, limit: int) -> int:
        n = self.varint()
        if n > limit:
            raise BlockError(f"{self.what}: count {n} is larger than the data allows")
        return n

    @property
    def left(self) -> int:
        return len(self.data) - self.pos


def read_varint(data: bytes, pos: int = 0) -> tuple[int, int]:
    """(value, position after it) of the CompactSize at ``pos``."""
    r = _Reader(data, "varint")
    r.pos = pos
    return r.varint(), r.pos


# ---------------------------------------------------------------------- transactions
@dataclass(frozen=True)
class TxIn:
    prev_txid: bytes          # internal order
    prev_index: int
    script_sig: bytes
    sequence: int

    def serialize(self) -> bytes:
        return (self.prev_txid + struct.pack("<I", self.prev_index) + varint(len(self.script_sig))
                + self.script_sig + struct.pack("<I", self.sequence))


@dataclass(frozen=True)
class TxOut:
    value: int                # satoshis
    script_pubkey: bytes

    def serialize(self) -> bytes:
        return struct.pack("<q", self.value) + varint(len(self.script_pubkey)) + self.script_pubkey


@dataclass(frozen=True)
class Tx:
    version: int
    inputs: tuple[TxIn, ...]
    outputs: tuple[TxOut, ...]
    locktime: int
    witnesses: tuple[tuple[bytes, ...], ...] = ()   # one stack per input, or () for none

    @property
    def has_witness(self) -> bool:
        return any(stack for stack in self.witnesses)

    def serialize(self, with_witness: bool = True) -> bytes:
        body = (varint(len(self.inputs)) + b"".join(i.serialize() for i in self.inputs)
                + varint(len(self.outputs)) + b"".join(o.serialize() for o in self.outputs))
        version = struct.pack("<I", self.version & 0xFFFFFFFF)
        locktime = struct.pack("<I", self.locktime)
        if not (with_witness and self.has_witness):
            return version + body + locktime
        wit = b"".join(varint(len(stack)) + b"".join(varint(len(item)) + item for item in stack)
                       for stack in self.witnesses)
        return version + b"\x00\x01" + body + wit + locktime

    @property
    def txid(self) -> bytes:
        """sha256d of the serialization without witness (internal order)."""
        return sha256d(self.serialize(with_witness=False))

    @property
    def wtxid(self) -> bytes:
        """sha256d of the full serialization (equals txid without witness data)."""
        return sha256d(self.serialize(with_witness=True))

    @property
    def is_coinbase(self) -> bool:
        return (len(self.inputs) == 1 and self.inputs[0].prev_txid == bytes(32)
                and self.inputs[0].prev_index == 0xFFFFFFFF)

    @classmethod
    def parse(cls, data: bytes) -> "Tx":
        """Parse exactly one serialized transaction (with or without witness)."""
        r = _Reader(bytes(data), "transaction")
        tx = cls._read(r)
        if r.left:
            raise BlockError(f"transaction: {r.left} trailing bytes")
        return tx

    @classmethod
    def _read(cls, r: _Reader) -> "Tx":
        version = r.u32()
        segwit = False
        if r.left >= 2 and r.data[r.pos] == 0 and r.data[r.pos + 1] == 1:
            segwit = True
            r.take(2)
        n_in = r.count(r.left // 41)
        if n_in == 0:
            raise BlockError("transaction: no inputs")
        inputs = []
        for _ in range(n_in):
            prev, idx = r.take(32), r.u32()
            script = r.take(r.count(r.left))
            inputs.append(TxIn(prev, idx, script, r.u32()))
        n_out = r.count(r.left // 9)
        outputs = []
        for _ in range(n_out):
            value = r.i64()
            outputs.append(TxOut(value, r.take(r.count(r.left))))
        witnesses: tuple[tuple[bytes, ...], ...] = ()
        if segwit:
            stacks = []
            for _ in range(n_in):
                n_items = r.count(r.left)
                stacks.append(tuple(r.take(r.count(r.left)) for _ in range(n_items)))
            witnesses = tuple(stacks)
            if not any(witnesses):
                raise BlockError("transaction: witness flag set but every witness is empty")
        locktime = r.u32()
        return cls(version, tuple(inputs), tuple(outputs), locktime, witnesses)


# ----------------------------------------------------------------------------- merkle
def merkle_root(hashes: Sequence[bytes]) -> bytes:
    """Merkle root of txids (or wtxids) in internal order; the last one is paired with
    itself on odd levels."""
    if not hashes:
        raise ValueError("merkle root of no hashes")
    level = list(hashes)
    while len(level) > 1:
        if len(level) % 2:
            level.append(level[-1])
        level = [sha256d(level[i] + level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


def merkle_branch(txids: Sequence[bytes]) -> list[bytes]:
    """Stratum-style branch of the coinbase: the siblings on its path to the root, given
    the txids of every transaction *after* the coinbase."""
    branch: list[bytes] = []
    level: list[bytes | None] = [None, *txids]
    while len(level) > 1:
        if len(level) % 2:
            level.append(level[-1])
        sibling = level[1]
        assert sibling is not None
        branch.append(sibling)
        pairs: list[bytes | None] = [None]
        for i in range(2, len(level), 2):
            a, b = level[i], level[i + 1]
            assert a is not None and b is not None
            pairs.append(sha256d(a + b))
        level = pairs
    return branch


def witness_commitment(wtxids: Sequence[bytes], reserved: bytes = WITNESS_RESERVED_VALUE) -> bytes:
    """BIP 141: sha256d(witness root ‖ reserved value); ``wtxids`` exclude the coinbase
    (whose wtxid counts as 32 zero bytes)."""
    return sha256d(merkle_root([bytes(32), *wtxids]) + reserved)


def commitment_script(commitment: bytes) -> bytes:
    if len(commitment) != 32:
        raise ValueError("a witness commitment is 32 bytes")
    return COMMITMENT_PREFIX + commitment


def find_witness_commitment(coinbase: Tx) -> bytes | None:
    """The 32-byte commitment of the coinbase (the last matching output, as BIP 141
    says), or None."""
    found = None
    for out in coinbase.outputs:
        spk = out.script_pubkey
        if len(spk) >= 38 and spk[:6] == COMMITMENT_PREFIX:
            found = spk[6:38]
    return found


# ----------------------------------------------------------------------------- BIP 34
def bip34_height_script(height: int) -> bytes:
    """The scriptSig prefix BIP 34 requires: ``CScript() << height`` -- OP_0 for 0, the
    single opcodes OP_1..OP_16 for 1..16, else a minimal little-endian number push."""
    if not 0 <= height <= 0x7FFFFFFF:
        raise ValueError(f"height {height} out of range")
    if height == 0:
        return b"\x00"
    if height <= 16:
        return bytes([0x50 + height])
    num = height.to_bytes((height.bit_length() + 7) // 8, "little")
    if num[-1] & 0x80:          # keep the number positive (script numbers carry a sign bit)
        num += b"\x00"
    return bytes([len(num)]) + num


def parse_bip34_height(script_sig: bytes) -> int:
    """The height at the start of a coinbase scriptSig, read as a node reads it."""
    if not script_sig:
        raise BlockError("coinbase scriptSig is empty")
    op = script_sig[0]
    if op == 0:
        return 0
    if 0x51 <= op <= 0x60:
        return op - 0x50
    if 1 <= op <= 5 and len(script_sig) > op:
        num = script_sig[1:1 + op]
        value = int.from_bytes(num, "little")
        if num[-1] & 0x80:
            raise BlockError("coinbase height is negative")
        return value
    raise BlockError(f"coinbase scriptSig does not start with a height (opcode {op:#04x})")


# ------------------------------------------------------------------------------ block
@dataclass(frozen=True)
class Block:
    header: bytes
    txs: tuple[Tx, ...] = field(default=())

    def serialize(self, with_witness: bool = True) -> bytes:
        return (self.header + varint(len(self.txs))
                + b"".join(tx.serialize(with_witness) for tx in self.txs))

    @property
    def hash(self) -> bytes:
        return sha256d(self.header)

    @property
    def version(self) -> int:
        return int(struct.unpack_from("<I", self.header, 0)[0])

    @property
    def prev_hash(self) -> bytes:
        return self.header[4:36]

    @property
    def merkle_root(self) -> bytes:
        return self.header[36:68]

    @property
    def time(self) -> int:
        return int(struct.unpack_from("<I", self.header, 68)[0])

    @property
    def bits(self) -> int:
        return int(struct.unpack_from("<I", self.header, 72)[0])

    @property
    def nonce(self) -> int:
        return int(struct.unpack_from("<I", self.header, 76)[0])

    @classmethod
    def parse(cls, data: bytes) -> "Block":
        r = _Reader(bytes(data), "block")
        header = r.take(80)
        n = r.count(r.left // 60 + 1)
        txs = tuple(Tx._read(r) for _ in range(n))
        if r.left:
            raise BlockError(f"block: {r.left} trailing bytes")
        return cls(header, txs)


def check_block(block: Block, *, height: int, prev_hash: bytes | None = None,
                target: int | None = None, coinbase_value: int | None = None,
                segwit: bool = True, check_pow: bool = True) -> None:
    """Apply the checks a node makes on a new block; raise BlockError naming the first
    broken rule (with the reason string Bitcoin Core would give where there is one).

    height: the block's height (BIP 34); prev_hash: the expected previous block (header
    order); target: the expected target (default: from the header's bits);
    coinbase_value: the most the coinbase may pay; segwit: apply BIP 141 (witness
    commitment and reserved value); check_pow: require hash <= target.
    """
    if len(block.header) != 80:
        raise BlockError("header is not 80 bytes")
    if not block.txs:
        raise BlockError("bad-blk-length: no transactions")
    if prev_hash is not None and block.prev_hash != prev_hash:
        raise BlockError("bad-prevblk: the header does not build on the template's block")
    try:
        header_target = nbits_to_target(block.bits)
    except ValueError as exc:
        raise BlockError(f"bad-diffbits: {exc}") from None
    if target is not None and header_target != target:
        raise BlockError(f"bad-diffbits: bits {block.bits:08x} give another target than expected")
    if check_pow and not meets_target(block.hash, header_target):
        raise BlockError("high-hash: proof of work fails the target")
    coinbase = block.txs[0]
    if not coinbase.is_coinbase:
        raise BlockError("bad-cb-missing: the first transaction is not a coinbase")
    for tx in block.txs[1:]:
        if tx.is_coinbase:
            raise BlockError("bad-cb-multiple: more than one coinbase")
    script_sig = coinbase.inputs[0].script_sig
    if not COINBASE_SCRIPT_MIN <= len(script_sig) <= COINBASE_SCRIPT_MAX:
        raise BlockError(f"bad-cb-length: coinbase scriptSig is {len(script_sig)} bytes")
    expect = bip34_height_script(height)
    if script_sig[:len(expect)] != expect:
        raise BlockError(f"bad-cb-height: coinbase scriptSig starts {script_sig[:6].hex()}, "
                         f"height {height} needs {expect.hex()}")
    if coinbase_value is not None:
        paid = sum(o.value for o in coinbase.outputs)
        if paid > coinbase_value:
            raise BlockError(f"bad-cb-amount: coinbase pays {paid} > {coinbase_value}")
    for tx in block.txs:
        if any(o.value < 0 for o in tx.outputs):
            raise BlockError("bad-txns-vout-negative")
    txids = [tx.txid for tx in block.txs]
    if len(set(txids)) != len(txids):
        raise BlockError("bad-txns-duplicate: a transaction appears twice")
    if merkle_root(txids) != block.merkle_root:
        raise BlockError("bad-txnmrklroot: the header's merkle root does not match")
    commitment = find_witness_commitment(coinbase)
    if not segwit:
        if any(tx.has_witness for tx in block.txs):
            raise BlockError("unexpected-witness: witness data on a chain without segwit")
        return
    if commitment is None:
        if any(tx.has_witness for tx in block.txs):
            raise BlockError("unexpected-witness: witness data without a witness commitment")
        return
    stacks = coinbase.witnesses
    if len(stacks) != 1 or len(stacks[0]) != 1 or len(stacks[0][0]) != 32:
        raise BlockError("bad-witness-nonce-size: the coinbase witness must be one 32-byte "
                         "item (the witness reserved value)")
    reserved = stacks[0][0]
    wtxids = [tx.wtxid for tx in block.txs[1:]]
    if witness_commitment(wtxids, reserved) != commitment:
        raise BlockError("bad-witness-merkle-match: witness commitment does not match")
