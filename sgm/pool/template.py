"""Block templates of the local pool: coinbase, merkle branch and the jobs it issues.

Every job has a real version-2 coinbase transaction (BIP 34 height in the scriptSig, room
for extranonce1 ‖ extranonce2, one output to a fixed P2WPKH-shaped script) and a real
merkle branch over a few synthetic transactions.

Byte orders, stated once: ``PoolJob.prevhash`` and every txid / branch entry are kept in
*internal* order (the bytes that go into the header and into the merkle hashing).  Only
``mining.notify`` renders the prevhash the Stratum way (the 4 bytes of each 32-bit word
reversed); that rendering is done here, by the pool's own code, so that the miner's
decoding of it is tested against an independent implementation.
"""
from __future__ import annotations

import os
import struct
import time
from dataclasses import dataclass
from typing import Any

from sgm.bitcoin import bip34_height_script, merkle_branch, push_data, sha256d, varint

__all__ = [
    "EXTRANONCE1_SIZE", "DEFAULT_VERSION", "DEFAULT_NBITS", "build_coinbase_parts",
    "stratum_prevhash", "PoolJob", "JobMaker",
]

#: Bytes of extranonce1 the pool assigns to each connection.
EXTRANONCE1_SIZE = 4
#: The header version of the pool's jobs unless told otherwise (BIP 9 top bits only).
DEFAULT_VERSION = 0x20000000
#: nBits of the pool's jobs: a 2025-era mainnet target.
DEFAULT_NBITS = 0x17023A04
#: Number of synthetic transactions after the coinbase in every job.
SYNTHETIC_TXS = 5

_COINBASE_TAG = b"/sgm local pool/"
_SUBSIDY_SAT = 312_500_000


_PAYOUT_SCRIPT = bytes.fromhex("0014") + sha256d(b"sgm local pool payout")[:20]


# ------------------------------------------------------------------------ coinbase
def build_coinbase_parts(height: int, extranonce_size: int, *, tag: bytes = _COINBASE_TAG,
                         script: bytes = _PAYOUT_SCRIPT, value: int = _SUBSIDY_SAT) -> tuple[bytes, bytes]:
    """(coinb1, coinb2) of a version-2 coinbase whose scriptSig is
    ``height push(extranonce1‖extranonce2) push(tag)``, the height encoded as BIP 34
    requires (OP_1..OP_16 for 1..16); ``extranonce_size`` is the total extranonce1 +
    extranonce2 length."""
    if not 1 <= extranonce_size <= 75:
        raise ValueError("extranonce size must be 1..75 bytes")
    height_push = bip34_height_script(height)
    tag_push = push_data(tag)
    script_len = len(height_push) + 1 + extranonce_size + len(tag_push)
    if not 2 <= script_len <= 100:
        raise ValueError(f"coinbase scriptSig would be {script_len} bytes (must be 2..100)")
    coinb1 = (struct.pack("<I", 2) + varint(1) + b"\x00" * 32 + b"\xff\xff\xff\xff"
              + varint(script_len) + height_push + bytes([extranonce_size]))
    coinb2 = (tag_push + b"\xff\xff\xff\xff" + varint(1) + struct.pack("<Q", value)
              + varint(len(script)) + script + struct.pack("<I", 0))
    return coinb1, coinb2


def stratum_prevhash(prevhash: bytes) -> str:
    """The Stratum text of a header-order prevhash: each 4-byte word's bytes reversed."""
    if len(prevhash) != 32:
        raise ValueError("prevhash is 32 bytes")
    return b"".join(prevhash[i:i + 4][::-1] for i in range(0, 32, 4)).hex()


# ------------------------------------------------------------------------- jobs
@dataclass(frozen=True)
class PoolJob:
    """A job as the pool issued it (shared by all connections)."""

    job_id: str
    height: int
    prevhash: bytes            # header (internal) byte order
    coinb1: bytes
    coinb2: bytes
    txids: tuple[bytes, ...]   # synthetic transactions after the coinbase
    branch: tuple[bytes, ...]
    version: int
    nbits: int
    ntime: int
    clean_jobs: bool

    def notify_params(self, clean: bool | None = None) -> list[Any]:
        """``mining.notify`` params (``clean`` overrides the job's clean_jobs flag)."""
        return [self.job_id, stratum_prevhash(self.prevhash), self.coinb1.hex(), self.coinb2.hex(),
                [b.hex() for b in self.branch], f"{self.version:08x}", f"{self.nbits:08x}",
                f"{self.ntime:08x}", self.clean_jobs if clean is None else clean]


class JobMaker:
    """Makes the pool's successive jobs: a clean job moves to a new block (new prevhash,
    height + 1); a non-clean one keeps the block and changes the transactions."""

    def __init__(self, *, start_height: int, extranonce_size: int,
                 version: int = DEFAULT_VERSION, nbits: int = DEFAULT_NBITS) -> None:
        self.height = start_height
        self.extranonce_size = extranonce_size
        self.version = version
        self.nbits = nbits
        self.prevhash = self._random_prevhash()
        self._next_id = 1
        self._made = 0

    @staticmethod
    def _random_prevhash() -> bytes:
        # internal byte order: a real block hash has its zero bytes at the end here
        return os.urandom(24) + b"\x00" * 8

    def make(self, clean: bool) -> PoolJob:
        if clean and self._made:
            self.prevhash = self._random_prevhash()
            self.height += 1
        self._made += 1
        job_id = f"{self._next_id:x}"
        self._next_id += 1
        txids = tuple(os.urandom(32) for _ in range(SYNTHETIC_TXS))
        coinb1, coinb2 = build_coinbase_parts(self.height, self.extranonce_size)
        return PoolJob(job_id=job_id, height=self.height, prevhash=self.prevhash, coinb1=coinb1,
                       coinb2=coinb2, txids=txids, branch=tuple(merkle_branch(txids)),
                       version=self.version, nbits=self.nbits, ntime=int(time.time()),
                       clean_jobs=clean)
