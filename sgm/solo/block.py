"""Transactions and blocks: (de)serialization with and without witness data, and a block
checker that applies the rules a node applies to a freshly mined block (before
``submitblock`` and in the tests).  The primitives (CompactSize, merkle trees, BIP 34,
the BIP 141 witness commitment) are :mod:`sgm.bitcoin`'s.

Hashes are raw 32-byte digests in internal byte order; ``display`` hex (block explorers,
RPC ``txid``/``hash`` fields) is the byte-reversed form.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

from sgm.bitcoin import (
    COMMITMENT_PREFIX,
    bip34_height_script,
    meets_target,
    merkle_root,
    nbits_to_target,
    read_varint,
    sha256d,
    varint,
    witness_commitment,
)

__all__ = [
    "BlockError", "TxIn", "TxOut", "Tx", "Block", "check_block", "find_witness_commitment",
    "COINBASE_SCRIPT_MIN", "COINBASE_SCRIPT_MAX",
]

#: Coinbase scriptSig size limits (consensus: "bad-cb-length").
COINBASE_SCRIPT_MIN, COINBASE_SCRIPT_MAX = 2, 100


class BlockError(ValueError):
    """A transaction or block that cannot be parsed or breaks a consensus rule."""


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
        try:
            value, self.pos = read_varint(self.data, self.pos)
        except ValueError as exc:
            raise BlockError(f"{self.what}: {exc}") from None
        return value

    def count(self, limit: int) -> int:
        n = self.varint()
        if n > limit:
            raise BlockError(f"{self.what}: count {n} is larger than the data allows")
        return n

    @property
    def left(self) -> int:
        return len(self.data) - self.pos


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
    def parse(cls, data: bytes) -> Tx:
        """Parse exactly one serialized transaction (with or without witness)."""
        r = _Reader(bytes(data), "transaction")
        tx = cls._read(r)
        if r.left:
            raise BlockError(f"transaction: {r.left} trailing bytes")
        return tx

    @classmethod
    def _read(cls, r: _Reader) -> Tx:
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


# ---------------------------------------------------------------- witness commitment
def find_witness_commitment(coinbase: Tx) -> bytes | None:
    """The 32-byte commitment of the coinbase (the last matching output, as BIP 141
    says), or None."""
    found = None
    for out in coinbase.outputs:
        spk = out.script_pubkey
        if len(spk) >= 38 and spk[:6] == COMMITMENT_PREFIX:
            found = spk[6:38]
    return found


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
    def parse(cls, data: bytes) -> Block:
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
