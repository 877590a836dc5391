"""Jobs: Stratum ``mining.notify`` → header bytes, work enumeration, midstates, shares.

Byte-order rules (see ``shared/vectors/stratum_shares.json`` → ``conventions``):

* coinbase = coinb1 ‖ extranonce1 ‖ extranonce2 ‖ coinb2, concatenated as given;
* merkle root: ``h = sha256d(coinbase)``, then ``h = sha256d(h ‖ branch)`` for every branch,
  all in internal byte order; the result goes into the header as is;
* prevhash: the Stratum hex with the 4 bytes of each of its 8 words reversed;
* version / nbits / ntime / nonce: big-endian hex of a u32, written little-endian;
* BIP 310 version rolling: ``version = (job_version & ~mask) | (version_bits & mask)``.
  Pools read the submitted bits three ways (BIP 310's text, ckpool's ``job | bits``,
  public-pool's ``job ^ bits``); the three agree exactly when the job version has no bit
  inside the mask, so a job whose version does is mined without version rolling
  (see :func:`rolling_readable`).

A *midstate id* names one (extranonce2, version) combination of a job.  Version variants
vary fastest, so consecutive ids share a coinbase and merkle root.
"""
from __future__ import annotations

import logging
import struct
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sgm import _native
from sgm._native import MAX_MIDSTATES
from sgm.bitcoin import merkle_root_from_branch
from sgm.checks import HEX_RE, check_int
from sgm.hashing import MAX_TARGET, display_hash, hash_difficulty, meets_target, nbits_to_target, sha256d

__all__ = [
    "JobError", "Job", "PreparedWork", "MidstateCache", "Share", "make_share",
    "word_swap", "build_header", "MAX_VERSION_VARIANT_BITS",
    "MAX_MIDSTATES", "MAX_EXTRANONCE2_SIZE", "rolling_readable",
]

log = logging.getLogger(__name__)

#: At most this many mask bits are rolled (2**16 version variants per extranonce2).
MAX_VERSION_VARIANT_BITS = 16
#: Largest extranonce2 accepted (bytes).
MAX_EXTRANONCE2_SIZE = 16



class JobError(ValueError):
    """A job (or a parameter used to build one) is invalid; the message names the field."""


def word_swap(data: bytes) -> bytes:
    """Reverse the 4 bytes inside every 32-bit word (Stratum prevhash ↔ header bytes)."""
    if len(data) % 4:
        raise ValueError("word_swap needs a multiple of 4 bytes")
    return b"".join(data[i:i + 4][::-1] for i in range(0, len(data), 4))


def build_header(version: int, prev_header_bytes: bytes, merkle_root: bytes, ntime: int,
                 nbits: int, nonce: int) -> bytes:
    """Assemble an 80-byte header from field values (u32s as ints, hashes in header order)."""
    if len(prev_header_bytes) != 32 or len(merkle_root) != 32:
        raise ValueError("prevhash and merkle root are 32 bytes each")
    return (struct.pack("<I", version & 0xFFFFFFFF) + prev_header_bytes + merkle_root
            + struct.pack("<III", ntime, nbits, nonce))


# ------------------------------------------------------------------------- validation
def _hex_field(value: Any, name: str, *, length: int | None = None, allow_empty: bool = True) -> bytes:
    if not isinstance(value, str):
        raise JobError(f"{name}: expected a hex string, got {type(value).__name__}")
    if length is not None and len(value) != length:
        raise JobError(f"{name}: expected {length} hex digits, got {len(value)}")
    if not allow_empty and not value:
        raise JobError(f"{name}: must not be empty")
    if len(value) % 2 or not HEX_RE.match(value):
        raise JobError(f"{name}: not valid hex ({value[:40]!r})")
    return bytes.fromhex(value)


def _u32_field(value: Any, name: str) -> int:
    return int.from_bytes(_hex_field(value, name, length=8), "big")


def _int_field(value: Any, name: str, lo: int, hi: int) -> int:
    return check_int(value, name, lo, hi, error=JobError)


def rolling_readable(version: int, mask: int) -> bool:
    """True when rolled versions of ``version`` under ``mask`` read the same at every pool.

    A pool rebuilds the header version from the job's and the submitted bits as
    ``(job & ~mask) | bits`` (BIP 310), ``job | bits`` (ckpool) or ``job ^ bits``
    (public-pool, ESP-Miner).  With no job bit inside the mask all three give
    ``job | bits``; otherwise no submitted value satisfies all three, and the job is
    mined without version rolling (no sixth submit parameter: every pool reads that alike).
    """
    return mask != 0 and version & mask == 0


def _spread_bits(k: int, positions: Sequence[int]) -> int:
    """Place bit i of k at bit position positions[i]."""
    out = 0
    for i, pos in enumerate(positions):
        if (k >> i) & 1:
            out |= 1 << pos
    return out


# ------------------------------------------------------------------------------- Job
@dataclass(frozen=True)
class Job:
    """One unit of pool work, validated, with everything needed to build headers.

    ``prevhash`` is the 32 bytes as they go into the header (already word-swapped);
    ``prevhash_hex`` keeps the Stratum text.  ``target`` is the share target (int);
    ``version_mask`` the negotiated BIP 310 mask (0 = no rolling); the job rolls version
    bits only when :func:`rolling_readable` says pools read them alike.
    ``extranonce2_start``: the first extranonce2 value its work space uses (a job rebuilt
    mid-way, e.g. for a new version mask, continues after the extranonce2 values that
    were already handed out instead of hashing them again).
    """

    job_id: str
    prevhash_hex: str
    prevhash: bytes
    coinb1: bytes
    coinb2: bytes
    merkle_branch: tuple[bytes, ...]
    version: int
    nbits: int
    ntime: int
    clean_jobs: bool
    extranonce1: bytes
    extranonce2_size: int
    target: int
    version_mask: int = 0
    extranonce2_start: int = 0
    _roll_positions: tuple[int, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _int_field(self.extranonce2_size, "extranonce2_size", 0, MAX_EXTRANONCE2_SIZE)
        _int_field(self.target, "target", 1, MAX_TARGET)
        _int_field(self.version_mask, "version_mask", 0, 0xFFFFFFFF)
        for name in ("version", "nbits", "ntime"):
            _int_field(getattr(self, name), name, 0, 0xFFFFFFFF)
        if len(self.prevhash) != 32:
            raise JobError("prevhash: expected 32 bytes")
        if len(self.extranonce1) > 64:
            raise JobError("extranonce1: longer than 64 bytes")
        _int_field(self.extranonce2_start, "extranonce2_start", 0, self.n_extranonce2 - 1)
        positions: tuple[int, ...] = ()
        if rolling_readable(self.version, self.version_mask):
            positions = tuple(i for i in range(32) if (self.version_mask >> i) & 1)
        object.__setattr__(self, "_roll_positions", positions[:MAX_VERSION_VARIANT_BITS])

    # ---------------------------------------------------------------- construction
    @classmethod
    def from_notify(cls, params: Sequence[Any], *, extranonce1: str | bytes, extranonce2_size: int,
                    target: int, version_mask: int = 0) -> Job:
        """Build a Job from ``mining.notify`` params.

        params: [job_id, prevhash, coinb1, coinb2, merkle_branch, version, nbits, ntime,
        clean_jobs] (extra trailing items are ignored).  Raises JobError naming the bad field.
        """
        if not isinstance(params, (list, tuple)):
            raise JobError(f"notify params: expected a list, got {type(params).__name__}")
        if len(params) < 9:
            raise JobError(f"notify params: expected 9 items, got {len(params)}")
        job_id, prevhash, coinb1, coinb2, branch, version, nbits, ntime, clean = params[:9]
        if not isinstance(job_id, str) or not job_id:
            raise JobError(f"job_id: expected a non-empty string, got {job_id!r}")
        if len(job_id) > 128:
            raise JobError("job_id: longer than 128 characters")
        prev = _hex_field(prevhash, "prevhash", length=64)
        cb1 = _hex_field(coinb1, "coinb1", allow_empty=False)
        cb2 = _hex_field(coinb2, "coinb2", allow_empty=False)
        if not isinstance(branch, (list, tuple)):
            raise JobError(f"merkle_branch: expected a list, got {type(branch).__name__}")
        if len(branch) > 32:
            raise JobError(f"merkle_branch: {len(branch)} levels is more than 32")
        branches = tuple(_hex_field(b, f"merkle_branch[{i}]", length=64) for i, b in enumerate(branch))
        ver = _u32_field(version, "version")
        bits = _u32_field(nbits, "nbits")
        ntm = _u32_field(ntime, "ntime")
        if isinstance(clean, bool):
            clean_flag = clean
        elif isinstance(clean, int) and clean in (0, 1):
            clean_flag = bool(clean)
        else:
            raise JobError(f"clean_jobs: expected a bool, got {clean!r}")
        if isinstance(extranonce1, (bytes, bytearray)):
            en1 = bytes(extranonce1)
        else:
            en1 = _hex_field(extranonce1, "extranonce1")
        return cls(job_id=job_id, prevhash_hex=prevhash.lower(), prevhash=word_swap(prev),
                          coinb1=cb1, coinb2=cb2, merkle_branch=branches, version=ver, nbits=bits,
                          ntime=ntm, clean_jobs=clean_flag, extranonce1=en1,
                          extranonce2_size=extranonce2_size, target=target, version_mask=version_mask)

    def with_target(self, target: int) -> Job:
        """The same job with another share target (e.g. after mining.set_difficulty)."""
        return replace(self, target=target)

    # ------------------------------------------------------------------- values
    @property
    def network_target(self) -> int | None:
        """Target encoded by nbits, or None if nbits is not a valid compact target."""
        try:
            return nbits_to_target(self.nbits)
        except ValueError:
            return None

    @property
    def ntime_hex(self) -> str:
        return f"{self.ntime:08x}"

    @property
    def rolls_version(self) -> bool:
        """True when this job's shares carry rolled version bits (mining.submit's 6th param)."""
        return bool(self._roll_positions)

    @property
    def n_version_variants(self) -> int:
        """2**popcount(mask), capped at 2**16 (the low-order mask bits are rolled); 1 when
        the job does not roll."""
        return 1 << len(self._roll_positions)

    @property
    def n_extranonce2(self) -> int:
        return 1 << (8 * self.extranonce2_size)

    @property
    def n_midstates(self) -> int:
        """How many midstate ids this job has (each is 2**32 nonces of work), from
        ``extranonce2_start`` on; capped at MAX_MIDSTATES (what the native queue enumerates)."""
        return min((self.n_extranonce2 - self.extranonce2_start) * self.n_version_variants,
                   MAX_MIDSTATES)

    # ------------------------------------------------------------- enumeration
    def version_variant_bits(self, k: int) -> int:
        """version_bits of version variant k (variant 0 = the job's own version)."""
        if not 0 <= k < self.n_version_variants:
            raise ValueError(f"version variant {k} outside 0..{self.n_version_variants - 1}")
        return _spread_bits(k, self._roll_positions)

    def work_params(self, midstate_id: int) -> tuple[bytes, int]:
        """(extranonce2, version_bits) named by ``midstate_id`` (0 <= id < n_midstates).

        Version variants vary fastest; extranonce2 is ``extranonce2_start`` plus the
        remaining quotient, big-endian.
        """
        check_int(midstate_id, "midstate_id", 0, self.n_midstates - 1)
        n_var = self.n_version_variants
        en2_index, variant = divmod(midstate_id, n_var)
        en2_index += self.extranonce2_start
        extranonce2 = en2_index.to_bytes(self.extranonce2_size, "big") if self.extranonce2_size else b""
        return extranonce2, self.version_variant_bits(variant)

    def midstate_id_of(self, extranonce2: bytes, version_bits: int | None = None) -> int:
        """Inverse of work_params for rolled bits within the enumerated positions."""
        self._check_en2(extranonce2)
        vb = 0 if version_bits is None else version_bits
        if not self.rolls_version and vb:
            raise ValueError("this job does not roll version bits")
        diff = vb & self.version_mask
        k = 0
        for i, pos in enumerate(self._roll_positions):
            if (diff >> pos) & 1:
                k |= 1 << i
                diff &= ~(1 << pos)
        if diff:
            raise ValueError("version_bits use mask bits outside the enumerated ones")
        en2_index = int.from_bytes(extranonce2, "big") if extranonce2 else 0
        if en2_index < self.extranonce2_start:
            raise ValueError(f"extranonce2 {en2_index} lies before this job's extranonce2_start "
                             f"{self.extranonce2_start}")
        return (en2_index - self.extranonce2_start) * self.n_version_variants + k

    # ------------------------------------------------------------------ headers
    def _check_en2(self, extranonce2: bytes) -> None:
        if not isinstance(extranonce2, (bytes, bytearray)):
            raise TypeError("extranonce2 must be bytes")
        if len(extranonce2) != self.extranonce2_size:
            raise ValueError(f"extranonce2 must be {self.extranonce2_size} bytes, got {len(extranonce2)}")

    def coinbase(self, extranonce2: bytes) -> bytes:
        """The serialized coinbase transaction (without witness) for this extranonce2."""
        self._check_en2(extranonce2)
        return self.coinb1 + self.extranonce1 + bytes(extranonce2) + self.coinb2

    def merkle_root(self, extranonce2: bytes) -> bytes:
        """Merkle root in internal byte order (as it sits in the header)."""
        return merkle_root_from_branch(sha256d(self.coinbase(extranonce2)), self.merkle_branch)

    def rolled_version(self, version_bits: int | None = None) -> int:
        """Header version for ``version_bits`` (None or 0 on a job that does not roll → the
        job's own version)."""
        if version_bits is None:
            return self.version
        if not 0 <= version_bits <= 0xFFFFFFFF:
            raise ValueError("version_bits must be a u32")
        if not self.rolls_version:
            if version_bits:
                raise ValueError(f"job {self.job_id} does not roll version bits "
                                 f"(version {self.version:08x}, mask {self.version_mask:08x})")
            return self.version
        if version_bits & ~self.version_mask & 0xFFFFFFFF:
            raise ValueError(f"version_bits {version_bits:08x} outside mask {self.version_mask:08x}")
        return (self.version & ~self.version_mask & 0xFFFFFFFF) | (version_bits & self.version_mask)

    def header(self, extranonce2: bytes, nonce: int = 0, version_bits: int | None = None,
               *, merkle_root: bytes | None = None) -> bytes:
        """The 80-byte header.  ``version_bits`` None keeps the job's version; an int applies
        BIP 310 rolling.  ``merkle_root`` may be passed when already computed."""
        if not 0 <= nonce <= 0xFFFFFFFF:
            raise ValueError("nonce must be a u32")
        root = self.merkle_root(extranonce2) if merkle_root is None else merkle_root
        return build_header(self.rolled_version(version_bits), self.prevhash, root,
                            self.ntime, self.nbits, nonce)

    def header_for(self, midstate_id: int, nonce: int = 0) -> bytes:
        extranonce2, vb = self.work_params(midstate_id)
        return self.header(extranonce2, nonce, vb)

    def describe(self) -> str:
        return (f"job {self.job_id} v={self.version:08x} mask={self.version_mask:08x} "
                f"nbits={self.nbits:08x} ntime={self.ntime:08x} en2={self.extranonce2_size}B "
                f"branches={len(self.merkle_branch)} clean={self.clean_jobs}")


# --------------------------------------------------------------------- prepared work
@dataclass(frozen=True)
class PreparedWork:
    """What a device needs for one midstate id: midstate of header[0:64] and header[64:76]."""

    job_id: str
    midstate_id: int
    extranonce2: bytes
    version_bits: int
    midstate: bytes
    tail: bytes
    header_prefix: bytes

    def header(self, nonce: int) -> bytes:
        return self.header_prefix + struct.pack("<I", nonce)


def prepare_work(job: Job, midstate_id: int) -> PreparedWork:
    """Compute the PreparedWork of one midstate id (uses the native midstate)."""
    extranonce2, vb = job.work_params(midstate_id)
    hdr = job.header(extranonce2, 0, vb)
    return PreparedWork(job.job_id, midstate_id, extranonce2, vb,
                        _native.sha256_midstate(hdr[:64]), hdr[64:76], hdr[:76])


class MidstateCache:
    """Thread-safe bounded LRU of PreparedWork keyed by (job_id, midstate_id).

    An entry is only reused for the very same job (equal fields), so a job id that a pool
    reuses after ``mining.set_extranonce`` never yields stale midstates.
    """

    def __init__(self, maxsize: int = 4096) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be >= 1")
        self.maxsize = maxsize
        self._lock = threading.Lock()
        self._data: OrderedDict[tuple[str, int], tuple[Job, PreparedWork]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, job: Job, midstate_id: int) -> PreparedWork:
        key = (job.job_id, midstate_id)
        with self._lock:
            entry = self._data.get(key)
            if entry is not None and (entry[0] is job or entry[0] == job):
                self._data.move_to_end(key)
                self.hits += 1
                return entry[1]
        prepared = prepare_work(job, midstate_id)  # outside the lock: pure computation
        with self._lock:
            self.misses += 1
            self._data[key] = (job, prepared)
            self._data.move_to_end(key)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)
        return prepared

    def put(self, job: Job, prepared: PreparedWork) -> None:
        """Keep a PreparedWork computed elsewhere (a job switch computes midstate 0 before
        it clears the cache: this keeps it)."""
        with self._lock:
            self._data[(job.job_id, prepared.midstate_id)] = (job, prepared)
            self._data.move_to_end((job.job_id, prepared.midstate_id))
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)

    def drop_job(self, job_id: str) -> int:
        """Forget every entry of one job; returns how many were dropped."""
        with self._lock:
            keys = [k for k in self._data if k[0] == job_id]
            for k in keys:
                del self._data[k]
            return len(keys)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._data


# ---------------------------------------------------------------------------- shares
@dataclass(frozen=True)
class Share:
    """A found nonce, in the hex form ``mining.submit`` sends.

    nonce: the u32 as 8 big-endian hex digits (as in the vectors); version_bits: 8 hex
    digits or None when no version rolling was negotiated; hash: sha256d digest bytes.
    """

    job_id: str
    extranonce2: str
    ntime: str
    nonce: str
    version_bits: str | None
    hash: bytes
    difficulty: float
    extranonce1: str = ""
    meets_target: bool = True

    @property
    def hash_hex(self) -> str:
        """Display (block-explorer) hex of the hash."""
        return display_hash(self.hash)

    @property
    def nonce_int(self) -> int:
        return int(self.nonce, 16)

    def submit_params(self, worker: str) -> list[str]:
        params = [worker, self.job_id, self.extranonce2, self.ntime, self.nonce]
        if self.version_bits is not None:
            params.append(self.version_bits)
        return params


def make_share(job: Job, prepared: PreparedWork, nonce: int, target: int | None = None) -> Share:
    """Re-hash the header with hashlib and package the share (``meets_target`` says
    whether it really meets ``target``, default ``job.target``: a False here for the
    target a device scanned with is a hardware/kernel error)."""
    if prepared.job_id != job.job_id:
        raise ValueError(f"prepared work is for job {prepared.job_id}, not {job.job_id}")
    if not 0 <= nonce <= 0xFFFFFFFF:
        raise ValueError("nonce must be a u32")
    digest = sha256d(prepared.header(nonce))
    return Share(
        job_id=job.job_id,
        extranonce2=prepared.extranonce2.hex(),
        ntime=job.ntime_hex,
        nonce=f"{nonce:08x}",
        version_bits=f"{prepared.version_bits:08x}" if job.rolls_version else None,
        hash=digest,
        difficulty=hash_difficulty(digest),
        extranonce1=job.extranonce1.hex(),
        meets_target=meets_target(digest, job.target if target is None else target),
    )
