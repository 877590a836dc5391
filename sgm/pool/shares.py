"""Share validation: the pool's own header assembly, version reading and target check.

This module deliberately does not use the miner's header code (``sgm.jobs``): it builds
the 80-byte header from the pool's internal job bytes with a few lines of ``struct`` and
``hashlib``, so that a byte-order mistake on the miner's side makes its shares fail here
instead of being repeated here.  ``sgm.hashing`` is used for target/difficulty math only.

The header, field by field (all u32 little-endian, all hashes in internal byte order)::

    version ‖ prevhash ‖ merkle_root ‖ ntime ‖ nbits ‖ nonce
    merkle_root = fold(sha256d(coinb1 ‖ extranonce1 ‖ extranonce2 ‖ coinb2), branch)

Version rolling (BIP 310).  The 6th ``mining.submit`` parameter is read one of three
ways, as the three families of real pools do:

* ``"bip310"`` — BIP 310's text: ``version = (job & ~mask) | (bits & mask)``;
* ``"ckpool"`` — ckpool: ``version = job | bits``;
* ``"xor"``    — public-pool and ESP-Miner: ``version = job ^ bits``.

They agree while the job version has no bit inside the mask, and differ once it has (as
Bitcoin Core regtest's 0x30000000 has bit 28 inside 0x1fffe000).  Under every reading
bits outside the granted mask are refused, and a share without the 6th parameter is
hashed with the job's version as it is.
"""
from __future__ import annotations

import hashlib
import math
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

from sgm.checks import is_hex
from sgm.hashing import DIFF1, hash_difficulty, meets_target, nbits_to_target
from sgm.pool.records import (
    DUPLICATE,
    INVALID_VERSION_BITS,
    JOB_NOT_FOUND,
    LOW_DIFFICULTY,
    MALFORMED,
    NOT_SUBSCRIBED,
    OTHER,
    STALE,
    UNAUTHORIZED,
    AcceptedShare,
)
from sgm.pool.template import PoolJob

__all__ = [
    "VersionReading", "VERSION_READINGS", "check_version_reading", "read_version",
    "merkle_root", "share_header", "Reject", "ShareRules", "check_submit_shape", "check_share",
    "NTIME_FUTURE", "JobShares",
]

VersionReading = Literal["bip310", "ckpool", "xor"]
#: The readings of the 6th mining.submit parameter, by name.
VERSION_READINGS: tuple[str, ...] = get_args(VersionReading)

#: How far past the pool's clock a share's ntime may be (seconds), as Bitcoin Core allows.
NTIME_FUTURE = 7200

_U32 = 0xFFFFFFFF


def check_version_reading(reading: Any) -> VersionReading:
    """``reading`` if it names one of VERSION_READINGS, else ValueError."""
    if reading not in VERSION_READINGS:
        raise ValueError(f"version_reading must be one of {', '.join(VERSION_READINGS)}; got {reading!r}")
    return reading  # type: ignore[no-any-return]


def read_version(reading: VersionReading, job_version: int, version_bits: int | None, mask: int) -> int:
    """The header version a pool of family ``reading`` hashes for a share that sent
    ``version_bits`` (None: no 6th parameter) on a job with ``job_version`` under ``mask``.

    Bits outside the mask are the caller's to refuse first; this only does the arithmetic.
    """
    if version_bits is None:
        return job_version & _U32
    if reading == "bip310":
        return ((job_version & ~mask) | (version_bits & mask)) & _U32
    if reading == "ckpool":
        return (job_version | version_bits) & _U32
    if reading == "xor":
        return (job_version ^ version_bits) & _U32
    raise ValueError(f"unknown version reading {reading!r}")


def _sha256d(data: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def merkle_root(job: PoolJob, extranonce1: bytes, extranonce2: bytes) -> bytes:
    """Merkle root (internal order) of the job's block with this connection's coinbase."""
    h = _sha256d(job.coinb1 + extranonce1 + extranonce2 + job.coinb2)
    for sibling in job.branch:
        h = _sha256d(h + sibling)
    return h


def share_header(job: PoolJob, extranonce1: bytes, extranonce2: bytes, ntime: int, nonce: int,
                 version: int) -> bytes:
    """The 80-byte header the pool hashes for a share, from the pool's own job bytes."""
    return (struct.pack("<I", version & _U32) + job.prevhash + merkle_root(job, extranonce1, extranonce2)
            + struct.pack("<III", ntime, job.nbits, nonce))


class Reject(Exception):
    """A refused request: Stratum error ``code``, ``message`` for the client and the
    accounting ``reason`` (one of sgm.pool.records.REJECT_REASONS)."""

    def __init__(self, code: int, message: str, reason: str = OTHER) -> None:
        super().__init__(message)
        self.code, self.message, self.reason = code, message, reason

    # named constructors for the customary codes
    @classmethod
    def malformed(cls, message: str) -> Reject:
        return cls(20, message, MALFORMED)

    @classmethod
    def not_subscribed(cls) -> Reject:
        return cls(25, "Not subscribed", NOT_SUBSCRIBED)

    @classmethod
    def unauthorized(cls) -> Reject:
        return cls(24, "Unauthorized worker", UNAUTHORIZED)

    @classmethod
    def job_not_found(cls) -> Reject:
        return cls(21, "Job not found", JOB_NOT_FOUND)

    @classmethod
    def stale(cls) -> Reject:
        return cls(21, "Job not found (stale)", STALE)


@dataclass(frozen=True)
class ShareRules:
    """What a share is checked against: the connection's terms at the time it arrives."""

    extranonce1: bytes
    extranonce2_size: int
    version_mask: int
    target: int
    version_reading: VersionReading = "bip310"


def check_submit_shape(params: Sequence[Any]) -> None:
    """mining.submit carries 5 or 6 strings: worker, job id, extranonce2, ntime, nonce
    [, version bits]."""
    if not 5 <= len(params) <= 6:
        raise Reject.malformed("Malformed submit")
    for x in params:   # a loop, not all(genexpr): this runs for every share
        if not isinstance(x, str):
            raise Reject.malformed("Malformed submit")


def _hex_u32(value: str, what: str) -> int:
    if not is_hex(value, 8):
        raise Reject.malformed(f"Invalid {what}")
    return int(value, 16)


def check_share(job: PoolJob, params: Sequence[str], rules: ShareRules, seen: set[tuple[Any, ...]],
                *, now: float) -> AcceptedShare:
    """Check one well-shaped mining.submit (see check_submit_shape) for ``job``.

    ``seen`` holds the keys of the job's accepted shares; an accepted share's key is added.
    ``now`` is the pool's Unix time (for the ntime bound).  Raises Reject.
    """
    worker, _job_id, en2_hex, ntime_hex, nonce_hex = params[:5]
    if not is_hex(en2_hex, 2 * rules.extranonce2_size):
        raise Reject.malformed("Invalid extranonce2 size")
    extranonce2 = bytes.fromhex(en2_hex)
    ntime = _hex_u32(ntime_hex, "ntime")
    nonce = _hex_u32(nonce_hex, "nonce")
    if not job.ntime <= ntime <= int(now) + NTIME_FUTURE:
        raise Reject.malformed("ntime out of range")
    version_bits: int | None = None
    if len(params) == 6:
        version_bits = _hex_u32(params[5], "version bits")
        outside = version_bits & ~rules.version_mask & _U32
        if outside:
            raise Reject(20, f"Invalid version bits {version_bits:08x}: {outside:08x} outside the "
                         f"negotiated mask {rules.version_mask:08x}", INVALID_VERSION_BITS)
    version = read_version(rules.version_reading, job.version, version_bits, rules.version_mask)
    header = share_header(job, rules.extranonce1, extranonce2, ntime, nonce, version)
    key = (rules.extranonce1, extranonce2, ntime, nonce, version)
    if key in seen:
        raise Reject(22, "Duplicate share", DUPLICATE)
    digest = _sha256d(header)
    if not meets_target(digest, rules.target):
        raise Reject(23, "Low difficulty share", LOW_DIFFICULTY)
    seen.add(key)
    return AcceptedShare(
        job_id=job.job_id, worker=worker, extranonce1=rules.extranonce1.hex(),
        extranonce2=en2_hex.lower(), ntime=ntime_hex.lower(), nonce=nonce_hex.lower(),
        version_bits=params[5].lower() if len(params) == 6 else None, header=header, hash=digest,
        difficulty=hash_difficulty(digest), version=version,
        block=meets_target(digest, nbits_to_target(job.nbits)))



# ------------------------------------------------------------------ the pool's fast path
_sha256 = hashlib.sha256
_HEX8 = re.compile(r"[0-9a-fA-F]{8}\Z").match
_VERSION = struct.Struct("<I")
_TAIL = struct.Struct("<III")
#: (extranonce1, extranonce2 text) pairs whose merkle root a JobShares keeps; a miner keeps
#: one extranonce2 for millions of shares, so a few per connection are all that repeat.
_KEEP_ROOTS = 1024
_HEX_OF_SIZE: dict[int, Any] = {}


def _hex_of_size(digits: int) -> Any:
    """A compiled matcher for exactly ``digits`` hex digits (what is_hex(x, digits) says)."""
    match = _HEX_OF_SIZE.get(digits)
    if match is None:
        match = _HEX_OF_SIZE[digits] = re.compile(rf"[0-9a-fA-F]{{{digits}}}\Z").match
    return match


class JobShares:
    """:func:`check_share` for one job, with what does not change from share to share
    worked out once: the job's block target, and per (extranonce1, extranonce2) the
    extranonce2 bytes and the header bytes between version and ntime (prevhash ‖ merkle
    root), so a share costs one header hash instead of the coinbase and branch hashes too.

    :meth:`check` gives the verdict check_share gives for the same share -- the same checks
    in the same order, the same Reject codes and messages, the same AcceptedShare -- and
    tests/test_pool_fast.py compares the two on valid and invalid shares.
    """

    __slots__ = ("job", "block_target", "_roots")

    def __init__(self, job: PoolJob) -> None:
        self.job = job
        self.block_target = nbits_to_target(job.nbits)
        self._roots: dict[tuple[bytes, str], tuple[bytes, bytes]] = {}

    def _middle(self, extranonce1: bytes, en2_hex: str) -> tuple[bytes, bytes]:
        key = (extranonce1, en2_hex)
        hit = self._roots.get(key)
        if hit is None:
            extranonce2 = bytes.fromhex(en2_hex)
            if len(self._roots) >= _KEEP_ROOTS:   # bounded: forget them all, rarely
                self._roots.clear()
            hit = self._roots[key] = (extranonce2,
                                      self.job.prevhash + merkle_root(self.job, extranonce1, extranonce2))
        return hit

    def check(self, params: Sequence[str], extranonce1: bytes, extranonce2_size: int,
              version_mask: int, target: int, reading: VersionReading, seen: set[tuple[Any, ...]],
              now: float) -> AcceptedShare:
        """check_share(job, params, ShareRules(...), seen, now=now), faster."""
        job = self.job
        worker, _job_id, en2_hex, ntime_hex, nonce_hex = params[:5]
        if not _hex_of_size(2 * extranonce2_size)(en2_hex):
            raise Reject.malformed("Invalid extranonce2 size")
        if not _HEX8(ntime_hex):
            raise Reject.malformed("Invalid ntime")
        ntime = int(ntime_hex, 16)
        if not _HEX8(nonce_hex):
            raise Reject.malformed("Invalid nonce")
        nonce = int(nonce_hex, 16)
        if not job.ntime <= ntime <= int(now) + NTIME_FUTURE:
            raise Reject.malformed("ntime out of range")
        if len(params) == 6:
            bits_hex = params[5]
            if not _HEX8(bits_hex):
                raise Reject.malformed("Invalid version bits")
            version_bits = int(bits_hex, 16)
            outside = version_bits & ~version_mask & _U32
            if outside:
                raise Reject(20, f"Invalid version bits {version_bits:08x}: {outside:08x} outside the "
                             f"negotiated mask {version_mask:08x}", INVALID_VERSION_BITS)
            version = read_version(reading, job.version, version_bits, version_mask)
            version_text: str | None = bits_hex.lower()
        else:
            version = job.version & _U32
            version_text = None
        extranonce2, middle = self._middle(extranonce1, en2_hex)
        key = (extranonce1, extranonce2, ntime, nonce, version)
        if key in seen:
            raise Reject(22, "Duplicate share", DUPLICATE)
        header = _VERSION.pack(version) + middle + _TAIL.pack(ntime, job.nbits, nonce)
        digest = _sha256(_sha256(header).digest()).digest()
        value = int.from_bytes(digest, "little")
        if value > target:
            raise Reject(23, "Low difficulty share", LOW_DIFFICULTY)
        seen.add(key)
        return AcceptedShare(job.job_id, worker, extranonce1.hex(), en2_hex.lower(), ntime_hex.lower(),
                             nonce_hex.lower(), version_text, header, digest,
                             DIFF1 / value if value else math.inf, version, value <= self.block_target)
